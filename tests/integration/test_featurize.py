"""The featurize pass on local Spark: a file gone since the listing is a rejected row, and a failure in a
Python worker reaches the user as one readable line, not a Java stack trace."""

from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from featurizer.engines import EngineSpec
from featurizer.failures import error_summary
from featurizer.featurize import featurize
from featurizer.fetch import GONE
from featurizer.samples import CLASSES, draw, encode


def test_an_image_deleted_after_the_listing_becomes_a_rejected_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    images = spark.createDataFrame(
        [("id", f"file:{tmp_path}/Banana/gone.jpg", 3, "Banana", "train")],
        "image_id string, path string, length long, label string, split string",
    )
    sc = spark.sparkContext
    processed, through_model = sc.accumulator(0), sc.accumulator(0)

    (row,) = featurize(images, EngineSpec("onnx", "unused.onnx"), 16, processed, through_model).collect()

    assert (row["features"], row["error"]) == (None, GONE)
    assert (processed.value, through_model.value) == (1, 0)


def test_a_worker_failure_is_summarized_by_its_python_error(spark: SparkSession, tmp_path: Path) -> None:
    picture = tmp_path / "a.jpg"
    picture.write_bytes(encode(draw(CLASSES["Banana"], (32, 32), np.random.default_rng(0)), ".jpg"))
    images = spark.createDataFrame(
        [("id", f"file:{picture}", picture.stat().st_size, "Banana", "train")],
        "image_id string, path string, length long, label string, split string",
    )
    sc = spark.sparkContext
    broken = EngineSpec("onnx", "no-such-model.onnx")

    with pytest.raises(Exception) as raised:
        featurize(images, broken, 8, sc.accumulator(0), sc.accumulator(0)).collect()

    name, message = error_summary(raised.value)
    assert "no-such-model.onnx" in message and "\n" not in message and len(message) < 1000
    assert name.isidentifier() and not message.startswith(("An error occurred", "An exception was thrown"))
