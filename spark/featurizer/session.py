"""The Spark session: what spark-submit configured (EMR Serverless), or local mode for `featurizer run`."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

MASTER_ENV = "FEATURIZER_SPARK_MASTER"
DRIVER_MEMORY_ENV = "FEATURIZER_DRIVER_MEMORY"
S3A_JARS_ENV = "FEATURIZER_S3A_JARS"


class S3ConnectorMissing(RuntimeError):
    """Local Spark was asked for s3:// without the S3A jars."""


def s3a_jars_dir() -> Path:
    return Path(os.environ.get(S3A_JARS_ENV) or Path.home() / ".cache" / "featurizer" / "s3a-jars")


def s3a_jars() -> list[Path]:
    folder = s3a_jars_dir()
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def require_s3a() -> None:
    if not s3a_jars():
        raise S3ConnectorMissing(
            f"s3:// locations on local Spark need Hadoop's S3A connector, and no jar is in {s3a_jars_dir()}: "
            f"run `python packaging/s3a_jars.py` (or `make s3a`), or set {S3A_JARS_ENV} to a folder holding "
            "hadoop-aws and the AWS SDK bundle"
        )


def _s3a_settings() -> dict[str, str]:
    """s3:// and s3a:// through S3A, with boto3's endpoint variables honoured (a local S3 server)."""
    jars = s3a_jars()
    if not jars:
        return {}
    settings = {
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        settings |= {
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        }
    return settings


def local_session(settings: Mapping[str, str] | None = None) -> SparkSession:
    """Spark in local mode on every core, with Python workers running this interpreter.

    `settings` are extra Spark properties for the session (e.g. spark.task.cpus in the benchmarks).
    """
    # Spark starts workers with `python3` from PATH unless told otherwise: use the environment we run in.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(os.environ.get(MASTER_ENV, "local[*]"))
        .appName("featurizer")
        .config("spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV, "4g"))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "16")
    )
    for key, value in (_s3a_settings() | dict(settings or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def submitted_session() -> SparkSession:
    """The session spark-submit set up (master, archives, executors); nothing is overridden here."""
    return SparkSession.builder.appName("featurizer").getOrCreate()
