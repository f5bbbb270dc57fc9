"""featurizer.fetch: image bytes read in batches, with a reason for a file gone since the listing."""

from pathlib import Path

import pytest

from featurizer import storage
from featurizer.fetch import GONE, read, read_batches, too_large
from featurizer.options import MAX_IMAGE_BYTES
from featurizer.storage import StorageError


def test_batches_come_back_in_order_with_a_reason_for_a_file_deleted_after_the_listing(
    tmp_path: Path,
) -> None:
    paths = []
    for index in range(37):
        (tmp_path / f"{index}.jpg").write_bytes(bytes([index]) * 3)
        paths.append(f"file:{tmp_path}/{index}.jpg")
    paths.insert(5, f"file:{tmp_path}/gone.jpg")

    batches = list(read_batches(paths, 16))

    assert [len(batch) for batch in batches] == [16, 16, 6]
    contents = [item for batch in batches for item in batch]
    assert contents[5] == GONE
    assert [c for c in contents if c != GONE] == [bytes([index]) * 3 for index in range(37)]


def test_a_file_that_cannot_be_read_fails_the_task_instead_of_being_rejected(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()  # reading a folder: IsADirectoryError, not a vanished file

    with pytest.raises(StorageError, match=r"cannot read file:.*/folder\.jpg: .*Is a directory"):
        list(read_batches([f"file:{tmp_path}/folder.jpg"], 16))


def test_no_path_no_batch() -> None:
    assert list(read_batches([], 16)) == []


def test_a_file_listed_over_the_byte_cap_is_rejected_without_being_requested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, big = tmp_path / "small.jpg", tmp_path / "big.png"
    small.write_bytes(b"abc")
    with big.open("wb") as sparse:  # one byte over the default cap by its size, nothing on disk
        sparse.truncate(MAX_IMAGE_BYTES + 1)
    requested: list[str] = []
    real_read = storage.read_bytes

    def spy(path: str, limit: int) -> bytes:
        requested.append(path)
        return real_read(path, limit)

    monkeypatch.setattr(storage, "read_bytes", spy)

    (contents,) = read_batches([f"file:{small}", f"file:{big}"], 16, lengths=[3, MAX_IMAGE_BYTES + 1])

    assert contents == [
        b"abc",
        "file too large: 33554433 bytes, over the limit of 33554432 "
        "(--max-image-bytes; raise it to read this file)",
    ]
    assert requested == [f"file:{small}"]


def test_a_file_that_grew_past_the_cap_since_the_listing_is_refused_on_its_size(tmp_path: Path) -> None:
    grown = tmp_path / "grown.jpg"
    grown.write_bytes(bytes(50))

    (contents,) = read_batches([f"file:{grown}"], 16, lengths=[3], max_bytes=49)

    assert contents == [too_large(50, 49)]
    assert read(f"file:{grown}", 50, max_bytes=50) == bytes(50)  # the cap is inclusive
