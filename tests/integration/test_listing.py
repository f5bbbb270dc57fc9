import os
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurizer import listing
from featurizer.listing import Folder, list_input, plan


def touch(root: Path, *names: str, data: bytes = b"x") -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def listed(spark: SparkSession, root: Path, slots: int = 2) -> dict[str, int]:
    return {r["path"]: r["length"] for r in list_input(spark, str(root), slots).collect()}


def test_every_visible_file_is_listed_once_with_its_length_as_spark_spells_paths(
    spark: SparkSession, tmp_path: Path
) -> None:
    names = ["A/1.jpg", "A/deep/er/2.jpg", "Pêche (jaune)/50% off #1.jpg", "loose.txt", "B/empty.jpg"]
    touch(tmp_path, *names)
    (tmp_path / "B" / "empty.jpg").write_bytes(b"")
    (tmp_path / "C" / "nothing").mkdir(parents=True)

    found = listed(spark, tmp_path)

    expected = {f"file:{tmp_path.resolve()}/{name}": 0 if name == "B/empty.jpg" else 1 for name in names}
    assert found == expected


def test_a_file_rewritten_gets_a_new_version_and_an_untouched_one_keeps_its_own(
    spark: SparkSession, tmp_path: Path
) -> None:
    """The feature store's key: what the listing alone says of a file's content (docs/feature-store.md)."""
    touch(tmp_path, "A/kept.jpg", "A/rewritten.jpg")

    def versions() -> dict[str, str]:
        rows = list_input(spark, str(tmp_path), 2).collect()
        return {r["path"].rsplit("/", 1)[-1]: r["version"] for r in rows}

    before = versions()
    os.utime(tmp_path / "A" / "rewritten.jpg", ns=(1, 1_000_000_007))
    after = versions()
    assert after["kept.jpg"] == before["kept.jpg"] == str((tmp_path / "A" / "kept.jpg").stat().st_mtime_ns)
    assert after["rewritten.jpg"] == "1000000007" != before["rewritten.jpg"]


@pytest.mark.parametrize("depth", [0, listing.MAX_OPEN_DEPTH], ids=["tasks-filter", "driver-prunes"])
def test_names_are_skipped_by_sparks_rule_at_any_depth(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    monkeypatch.setattr(listing, "MAX_OPEN_DEPTH", depth)
    touch(tmp_path, "A/1.jpg", "A/.2.jpg", "A/_3.jpg", ".cache/4.jpg", "_tmp/A/5.jpg", "A/.thumbs/6.jpg")
    touch(tmp_path, "A/7.jpg._COPYING_", "_year=2024/A/8.jpg", "A/_metadata")

    found = sorted(path[len(f"file:{tmp_path.resolve()}/") :] for path in listed(spark, tmp_path))

    assert found == ["A/1.jpg", "A/_metadata", "_year=2024/A/8.jpg"]


@pytest.mark.parametrize("depth", [0, listing.MAX_OPEN_DEPTH], ids=["tasks-walk", "driver-opens"])
def test_links_to_files_are_followed_and_links_to_folders_are_not(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    monkeypatch.setattr(listing, "MAX_OPEN_DEPTH", depth)
    touch(tmp_path / "elsewhere", "Kiwi/1.jpg", "2.jpg")
    touch(tmp_path / "input", "Lime/3.jpg")
    (tmp_path / "input" / "Kiwi").symlink_to(tmp_path / "elsewhere" / "Kiwi")
    (tmp_path / "input" / "Lime" / "loop").symlink_to(tmp_path / "input")
    (tmp_path / "input" / "Lime" / "2.jpg").symlink_to(tmp_path / "elsewhere" / "2.jpg")

    found = listed(spark, tmp_path / "input")

    root = f"file:{(tmp_path / 'input').resolve()}"
    assert found == {f"{root}/Lime/2.jpg": 1, f"{root}/Lime/3.jpg": 1}


def test_a_hidden_folder_above_the_input_does_not_hide_it(spark: SparkSession, tmp_path: Path) -> None:
    root = tmp_path / ".inbox" / "_fruits"
    touch(root, "A/1.jpg")

    assert list(listed(spark, root)) == [f"file:{root.resolve()}/A/1.jpg"]


def test_the_driver_opens_folders_until_there_are_enough_to_list_in_parallel(tmp_path: Path) -> None:
    touch(tmp_path, "Training/Lemon/1.jpg", "Training/Lime/2.jpg", "Test/Lemon/3.jpg", "top.jpg")
    root = str(tmp_path.resolve())

    tasks = plan(str(tmp_path), wanted=3)

    assert set(tasks) == {
        Folder(root, recursive=False),
        Folder(f"{root}/Test", recursive=False),
        Folder(f"{root}/Training", recursive=False),
        Folder(f"{root}/Test/Lemon", recursive=True),
        Folder(f"{root}/Training/Lemon", recursive=True),
        Folder(f"{root}/Training/Lime", recursive=True),
    }
    assert plan(str(tmp_path), wanted=1) == [Folder(root, recursive=True)]


def test_a_folder_too_big_to_open_in_one_request_is_listed_whole_by_one_task(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "PEEK_FILES", 3)
    touch(tmp_path, *(f"Big/{i}.jpg" for i in range(5)), "Big/sub/6.jpg", "Small/7.jpg")
    root = str(tmp_path.resolve())

    assert set(plan(str(tmp_path), wanted=8)) == {
        Folder(root, recursive=False),
        Folder(f"{root}/Big", recursive=True),
        Folder(f"{root}/Small", recursive=False),
    }
    assert len(listed(spark, tmp_path, slots=4)) == 7


def test_the_listing_matches_a_walk_of_the_folder(spark: SparkSession, tmp_path: Path) -> None:
    for index in range(300):
        touch(tmp_path, f"c{index % 7}/d{index % 3}/{index}.jpg", data=bytes(index % 11))
    walked = {
        f"file:{Path(folder).resolve()}/{name}": (Path(folder) / name).stat().st_size
        for folder, _, names in os.walk(tmp_path)
        for name in names
    }

    assert listed(spark, tmp_path, slots=8) == walked
