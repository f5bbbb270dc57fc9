"""One run of the job (default engine) on the `dataset` images, shared by the tests that read its outputs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurizer.job import execute, prepare
from featurizer.options import JobOptions
from featurizer.progress import Progress


@pytest.fixture(scope="session")
def onnx_run(
    spark: SparkSession, dataset: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    output = tmp_path_factory.mktemp("runs")
    options = JobOptions(input=str(dataset), output=str(output), run_id="onnx-run", weights=str(weights))
    execute(spark, prepare(options), Progress(io.StringIO()))
    return output / "onnx-run"
