"""How the input's files are grouped into featurize tasks, and a task's images into Arrow batches.

Spark's defaults pack files into tasks by bytes and charge every file 4 MB of "open cost": a folder of
5 kB images becomes tasks of ~30 images each, and every task costs a round of scheduling, a Python
worker hand-off and an Arrow stream (`bench/performance.py --tune`: Spark's packing ran at 0.6x this).
Here the task count is chosen from the number of files instead: tasks of at most `IMAGES_PER_TASK`
images (seconds of work, so a lost task costs little and progress moves), and at least two tasks per
slot the job may get, so dynamic allocation sees enough pending tasks to scale out, as long as tasks
keep `MIN_IMAGES_PER_TASK` images.

Each Arrow batch handed to a Python worker holds several inference batches (fewer hand-offs: +6 to
+12% in the same sweep), as many as fit in ARROW_BATCH_BYTES and at least one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

IMAGES_PER_TASK = 2_000
MIN_IMAGES_PER_TASK = 100
TASKS_PER_SLOT = 2
ARROW_BATCH_BYTES = 32 * 2**20
MAX_INFERENCE_BATCHES_PER_ARROW_BATCH = 16
ARROW_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"
_SETTINGS = (
    "spark.sql.files.maxPartitionBytes",
    "spark.sql.files.openCostInBytes",
    "spark.sql.files.minPartitionNum",
    ARROW_ROWS,
)


@dataclass(frozen=True)
class InputSize:
    """What Spark's file index knows before any job runs: how many files, how many bytes."""

    files: int
    bytes: int

    @property
    def average_bytes(self) -> int:
        return max(1, self.bytes // max(1, self.files))

    @classmethod
    def of(cls, scanned: DataFrame) -> InputSize:
        """Read from the driver's file index; no file is opened and no path is copied to Python."""
        jdf = scanned._jdf
        return cls(
            files=len(jdf.inputFiles()),
            bytes=int(jdf.queryExecution().optimizedPlan().stats().sizeInBytes()),  # py4j: BigInt -> int
        )


def task_slots(spark: SparkSession) -> int:
    """Tasks the job can run at once: all executors' cores under dynamic allocation (on a cluster),
    else Spark's default parallelism (local mode: the cores)."""
    conf = spark.sparkContext.getConf()
    clustered = not spark.sparkContext.master.startswith("local")
    if clustered and conf.get("spark.dynamicAllocation.enabled", "false") == "true":
        executors = conf.get("spark.dynamicAllocation.maxExecutors")
        if executors and executors.isdigit():
            cores = int(conf.get("spark.executor.cores", "1"))
            return max(1, int(executors) * cores // int(conf.get("spark.task.cpus", "1")))
    return spark.sparkContext.defaultParallelism


def featurize_tasks(files: int, slots: int) -> int:
    wanted = max(
        math.ceil(files / IMAGES_PER_TASK), min(TASKS_PER_SLOT * slots, files // MIN_IMAGES_PER_TASK)
    )
    return max(1, wanted)


def file_settings(size: InputSize, tasks: int) -> dict[str, str]:
    """Spark file-scan settings that cut `size` into about `tasks` tasks.

    Each file weighs its length plus the average file's (the open cost): tasks balance image count
    (inference time) with bytes (read and decode time) for inputs that mix thumbnails and photos.
    """
    open_cost = size.average_bytes
    per_task = math.ceil((size.bytes + max(1, size.files) * open_cost) / tasks)
    return {
        "spark.sql.files.maxPartitionBytes": str(max(1, per_task)),
        "spark.sql.files.openCostInBytes": str(open_cost),
        "spark.sql.files.minPartitionNum": str(tasks),
    }


def arrow_rows(size: InputSize, batch_size: int) -> int:
    """Images per Arrow batch: whole inference batches, as many as ARROW_BATCH_BYTES of average images
    hold (at most MAX_INFERENCE_BATCHES_PER_ARROW_BATCH), and at least one."""
    batches = ARROW_BATCH_BYTES // (size.average_bytes * batch_size)
    return batch_size * min(MAX_INFERENCE_BATCHES_PER_ARROW_BATCH, max(1, batches))


@contextmanager
def featurize_partitioning(spark: SparkSession, size: InputSize, batch_size: int) -> Iterator[int]:
    """Apply `file_settings` and `arrow_rows` while the input is scanned and featurized; later reads
    (Parquet) get Spark's defaults back. Yields the number of featurize tasks."""
    tasks = featurize_tasks(size.files, task_slots(spark))
    previous = {key: spark.conf.get(key, None) for key in _SETTINGS}
    settings = file_settings(size, tasks) | {ARROW_ROWS: str(arrow_rows(size, batch_size))}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield tasks
    finally:
        try:
            for key, value in previous.items():
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)
        except Exception:  # the JVM is gone (the error in flight says why): keep that error, not this one
            log.warning("could not restore Spark's file-scan settings", exc_info=True)
