"""Integration fixtures: one run of the job (default engine) on the sample images, shared by the tests that
read its outputs, and a real S3-compatible server on 127.0.0.1 that local Spark reads and writes through
S3A."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pyspark.sql import SparkSession

from featurizer import storage
from featurizer.job import execute, prepare
from featurizer.options import JobOptions
from featurizer.progress import Progress
from featurizer.session import s3a_jars
from tests.ports import free_port


@pytest.fixture(scope="session")
def onnx_run(
    spark: SparkSession, sample_images: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    output = tmp_path_factory.mktemp("runs")
    options = JobOptions(
        input=str(sample_images), output=str(output), run_id="onnx-run", weights=str(weights)
    )
    execute(spark, prepare(options), Progress(io.StringIO()))
    return output / "onnx-run"


@pytest.fixture(scope="package")
def s3(spark: SparkSession) -> Iterator[object]:
    if not s3a_jars():
        pytest.fail("the S3A jars are missing: run `make s3a` (python packaging/s3a_jars.py)")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    variables = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    # The Python workers list and read S3 themselves. This session's workers were started before the
    # server: Spark starts workers with the new environment (`featurizer run` sets it before Spark).
    workers = spark.sparkContext.environment
    saved = dict(workers)
    workers.update(variables)
    with pytest.MonkeyPatch.context() as env:
        for key, value in variables.items():
            env.setenv(key, value)
        for key, value in {
            "fs.s3a.endpoint": endpoint,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": "false",
            "fs.s3a.access.key": "testing",
            "fs.s3a.secret.key": "testing",
        }.items():
            hadoop.set(key, value)
        storage.s3_client.cache_clear()
        client = boto3.client("s3", endpoint_url=endpoint)
        yield client
        storage.s3_client.cache_clear()
    workers.clear()
    workers.update(saved)
    server.stop()
