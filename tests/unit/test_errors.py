"""A failure inside a Spark worker reaches the user as one readable line, not a Java stack trace."""

from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from featurizer.engines import EngineSpec
from featurizer.featurize import featurize
from featurizer.job import error_summary
from featurizer.samples import CLASSES, draw, encode


def test_a_worker_failure_is_summarized_by_its_python_error(spark: SparkSession, tmp_path: Path) -> None:
    picture = tmp_path / "a.jpg"
    picture.write_bytes(encode(draw(CLASSES["Banana"], (32, 32), np.random.default_rng(0)), ".jpg"))
    images = spark.createDataFrame(
        [("id", f"file:{picture}", "Banana", "train")],
        "image_id string, path string, label string, split string",
    )
    sc = spark.sparkContext
    broken = EngineSpec("onnx", "no-such-model.onnx")

    with pytest.raises(Exception) as raised:
        featurize(images, broken, 8, sc.accumulator(0), sc.accumulator(0)).collect()

    name, message = error_summary(raised.value)
    assert "no-such-model.onnx" in message and "\n" not in message and len(message) < 1000
    assert name.isidentifier() and not message.startswith(("An error occurred", "An exception was thrown"))


def test_our_own_errors_keep_their_name_and_first_line() -> None:
    assert error_summary(ValueError("first line\nsecond")) == ("ValueError", "first line")
