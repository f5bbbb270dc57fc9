"""The Spark session: what spark-submit configured (EMR Serverless), or local mode for `featurizer run`."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

MASTER_ENV = "FEATURIZER_SPARK_MASTER"
DRIVER_MEMORY_ENV = "FEATURIZER_DRIVER_MEMORY"


def local_session() -> SparkSession:
    """Spark in local mode on every core, with Python workers running this interpreter."""
    # Spark starts workers with `python3` from PATH unless told otherwise: use the environment we run in.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(os.environ.get(MASTER_ENV, "local[*]"))
        .appName("featurizer")
        .config("spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV, "4g"))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "16")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def submitted_session() -> SparkSession:
    """The session spark-submit set up (master, archives, executors); nothing is overridden here."""
    return SparkSession.builder.appName("featurizer").getOrCreate()


def configure_job(spark: SparkSession, batch_size: int) -> None:
    """Settings the job itself depends on, applied at run time so they hold wherever it runs."""
    # One Arrow batch is one inference batch: bounded memory per worker, whatever the image sizes.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))
