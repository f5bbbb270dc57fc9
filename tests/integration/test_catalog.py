import hashlib
import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurizer.catalog import catalog, summarize
from featurizer.listing import list_input


def touch(root: Path, *names: str, data: bytes = b"x") -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def rows(spark: SparkSession, root: Path, test_fraction: float = 0.2, seed: int = 42) -> dict[str, dict]:
    _, images = catalog(list_input(spark, str(root), slots=2), str(root), test_fraction, seed)
    return {r["relative_path"]: r.asDict() for r in images.collect()}


def test_labels_keep_spaces_accents_and_punctuation(spark: SparkSession, tmp_path: Path) -> None:
    names = ["Apple Crimson Snow/a.jpg", "Pêche (jaune)/b.PNG", "Kiwi, golden/c.JpEg", "50% off #1/d.jpg"]
    touch(tmp_path, *names)

    found = rows(spark, tmp_path)

    assert {r["label"] for r in found.values()} == {
        "Apple Crimson Snow",
        "Pêche (jaune)",
        "Kiwi, golden",
        "50% off #1",
    }
    assert set(found) == set(names)


def test_only_images_are_kept_and_the_rest_is_counted(spark: SparkSession, tmp_path: Path) -> None:
    touch(
        tmp_path,
        "A/1.jpg",
        "A/2.JPG",
        "A/3.jpeg",
        "A/4.png",
        "A/readme.txt",
        "A/5.gif",
        "B/6.Png",
        "loose.jpg",
    )
    touch(tmp_path, "A/empty.jpg", data=b"")
    files, _ = catalog(list_input(spark, str(tmp_path), slots=2), str(tmp_path), 0.2, 42)

    summary = summarize(files)

    assert (summary.files_found, summary.images_found, summary.files_ignored) == (9, 7, 2)
    assert summary.images_unlabelled == 1
    assert rows(spark, tmp_path)["A/empty.jpg"]["length"] == 0


def test_image_ids_depend_on_the_relative_path_only(spark: SparkSession, tmp_path: Path) -> None:
    touch(tmp_path / "one", "Banana/x 1.jpg", "Kiwi/y.png")
    shutil.copytree(tmp_path / "one", tmp_path / "elsewhere" / "two")

    first, second = rows(spark, tmp_path / "one"), rows(spark, tmp_path / "elsewhere" / "two")

    assert {k: r["image_id"] for k, r in first.items()} == {k: r["image_id"] for k, r in second.items()}
    assert first["Banana/x 1.jpg"]["image_id"] == hashlib.sha256(b"Banana/x 1.jpg").hexdigest()[:20]


def test_training_and_test_folders_define_the_split(spark: SparkSession, tmp_path: Path) -> None:
    touch(
        tmp_path,
        "Training/Lemon/1.jpg",
        "Training/Lime/2.jpg",
        "Test/Lemon/3.jpg",
        "Test/stray.jpg",
        "test-multiple_fruits/mix.jpg",
    )

    found = rows(spark, tmp_path)

    assert {k: (r["label"], r["split"]) for k, r in found.items()} == {
        "Training/Lemon/1.jpg": ("Lemon", "train"),
        "Training/Lime/2.jpg": ("Lime", "train"),
        "Test/Lemon/3.jpg": ("Lemon", "test"),
        "Test/stray.jpg": (None, None),
        "test-multiple_fruits/mix.jpg": (None, None),
    }


@pytest.fixture(scope="module")
def classes_of_many_sizes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sizes")
    for label, count in {"one": 1, "two": 2, "ten": 10, "big": 200}.items():
        touch(root, *(f"{label}/{i}.jpg" for i in range(count)))
    return root


def test_split_is_stratified_and_keeps_each_class_in_both_sides(
    spark: SparkSession, classes_of_many_sizes: Path
) -> None:
    found = rows(spark, classes_of_many_sizes)

    tests = {
        label: sum(1 for r in found.values() if r["label"] == label and r["split"] == "test")
        for label in ("one", "two", "ten", "big")
    }
    assert tests["one"] == 0 and tests["two"] == 1
    assert 1 <= tests["ten"] <= 3
    assert 36 <= tests["big"] <= 44


def test_split_is_reproducible_and_follows_the_seed(spark: SparkSession, classes_of_many_sizes: Path) -> None:
    def splits(seed: int) -> dict[str, str]:
        return {k: r["split"] for k, r in rows(spark, classes_of_many_sizes, seed=seed).items()}

    assert splits(42) == splits(42)
    assert splits(42) != splits(7)
