"""featurizer.fetch: image bytes read in batches, with a reason for a file gone since the listing."""

from pathlib import Path

import pytest

from featurizer.fetch import GONE, read_batches
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
