"""The feature store's commits (docs/feature-store.md), read from files as a run reads them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from featurizer.store import COMMITS, PARTS, RETENTION, Table


def commit(table: Path, name: str, rows: int, supersedes: tuple[str, ...] = ()) -> None:
    payload = {"part": f"parts/{name}", "rows": rows, "supersedes": list(supersedes)}
    (table / COMMITS).mkdir(parents=True, exist_ok=True)
    (table / COMMITS / f"{name}.json").write_text(json.dumps(payload))


def test_a_reader_takes_every_commit_no_other_supersedes_in_the_order_they_were_made(tmp_path: Path) -> None:
    commit(tmp_path, "20261201T000000000000Z-a-1", 100)
    commit(tmp_path, "20261201T000001000000Z-b-2", 3)
    commit(tmp_path, "20261201T000002000000Z-c-3", 2)
    commit(
        tmp_path,
        "20261201T000003000000Z-d-compacted-4",
        5,
        ("20261201T000001000000Z-b-2", "20261201T000002000000Z-c-3"),
    )
    commit(tmp_path, "20261201T000004000000Z-e-5", 1)

    live = Table(str(tmp_path)).live_commits()

    assert [c.name.split("-", 1)[1] for c in live] == ["a-1", "d-compacted-4", "e-5"]
    assert [c.rows for c in live] == [100, 5, 1]


def test_a_commit_being_written_a_broken_one_and_no_commits_give_nothing_to_read(tmp_path: Path) -> None:
    assert Table(str(tmp_path)).live_commits() == []
    (tmp_path / COMMITS).mkdir()
    (tmp_path / COMMITS / ".20261201T000000000000Z-a-1.json.tmp").write_text('{"part": "par')
    (tmp_path / COMMITS / "20261201T000000000000Z-b-2.json").write_text('{"part": "parts/b"}')  # no rows
    assert Table(str(tmp_path)).live_commits() == []


def test_tables_of_other_models_and_preprocessing_versions_are_other_folders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from featurizer import store

    one = Table.for_model("s3://b/runs/d/_store", "a" * 64)
    assert one.uri == f"s3://b/runs/d/_store/{'a' * 16}-p{store.PREPROCESSING_VERSION}"
    assert Table.for_model("s3://b/runs/d/_store", "b" * 64) != one
    monkeypatch.setattr(store, "PREPROCESSING_VERSION", store.PREPROCESSING_VERSION + 1)
    assert Table.for_model("s3://b/runs/d/_store", "a" * 64) != one


def part(table: Path, name: str) -> Path:
    folder = table / PARTS / name
    folder.mkdir(parents=True)
    (folder / "part-00000.parquet").write_bytes(b"rows")
    return folder


def test_vacuum_deletes_only_what_no_run_can_still_read(tmp_path: Path) -> None:
    old = "20261101T000000000000Z-a-1"
    compacted = "20261102T000000000000Z-b-compacted-2"  # supersedes old
    recent = "20261130T000000000000Z-c-3"
    fresh = "20261130T000001000000Z-d-compacted-4"  # supersedes compacted and recent
    for name, rows, supersedes in (
        (old, 5, ()),
        (compacted, 5, (old,)),
        (recent, 1, ()),
        (fresh, 6, (compacted, recent)),
    ):
        part(tmp_path, name)
        commit(tmp_path, name, rows, supersedes)
    killed = part(tmp_path, "20261101T000000000000Z-e-5")  # no commit: a run killed a month ago
    writing = part(tmp_path, "20261130T000002000000Z-f-6")  # no commit yet: a run writing it
    foreign = part(tmp_path, "not-a-commit")
    table = Table(str(tmp_path))
    live = table.live_commits()

    deleted = table.vacuum(datetime(2026, 12, 1, tzinfo=UTC))

    assert deleted == [f"parts/{old}", f"parts/{killed.name}"]
    assert not (tmp_path / PARTS / old).exists() and not (tmp_path / COMMITS / f"{old}.json").exists()
    assert not killed.exists() and writing.exists() and foreign.exists()
    # superseded less than RETENTION ago: a run may still be reading them
    assert (tmp_path / PARTS / compacted).exists() and (tmp_path / PARTS / recent).exists()
    assert table.live_commits() == live
    later = table.vacuum(datetime(2026, 12, 1, tzinfo=UTC) + RETENTION)
    assert later == [f"parts/{compacted}", f"parts/{recent}", f"parts/{writing.name}"]
    assert [c.name for c in table.live_commits()] == [fresh] and foreign.exists()


def test_vacuum_deletes_no_part_while_a_commit_file_cannot_be_read(tmp_path: Path) -> None:
    killed = part(tmp_path, "20261101T000000000000Z-a-1")
    (tmp_path / COMMITS).mkdir()
    (tmp_path / COMMITS / "20261101T000001000000Z-b-2.json").write_text('{"rows": 3}')  # a newer format?

    assert Table(str(tmp_path)).vacuum(datetime(2026, 12, 31, tzinfo=UTC)) == []
    assert killed.exists()


def test_a_commit_vacuumed_while_the_table_is_listed_is_listed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurizer import storage

    old, compaction = "20261101T000000000000Z-a-1", "20261102T000000000000Z-b-compacted-2"
    commit(tmp_path, old, 5)
    commit(tmp_path, compaction, 5, (old,))
    read = storage.read_bytes

    def vacuumed_meanwhile(uri: str, limit: int | None = None) -> bytes:
        if uri.endswith(f"{old}.json"):
            (tmp_path / COMMITS / f"{old}.json").unlink()
        return read(uri, limit)

    monkeypatch.setattr(storage, "read_bytes", vacuumed_meanwhile)

    assert [c.name for c in Table(str(tmp_path)).live_commits()] == [compaction]
