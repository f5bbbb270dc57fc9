from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurizer.engines import EngineSpec
from featurizer.featurize import featurize
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


def test_an_image_deleted_after_the_listing_becomes_a_rejected_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    images = spark.createDataFrame(
        [("id", f"file:{tmp_path}/Banana/gone.jpg", "Banana", "train")],
        "image_id string, path string, label string, split string",
    )
    sc = spark.sparkContext
    processed, through_model = sc.accumulator(0), sc.accumulator(0)

    (row,) = featurize(images, EngineSpec("onnx", "unused.onnx"), 16, processed, through_model).collect()

    assert (row["features"], row["error"]) == (None, GONE)
    assert (processed.value, through_model.value) == (1, 0)
