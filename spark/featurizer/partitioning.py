"""How the images are dealt into featurize tasks, and a task's images into Arrow batches.

Tasks are sized by image count: at most `IMAGES_PER_TASK` images (seconds of work, so a lost task costs
little and progress moves), and at least two tasks per slot the job may get, so dynamic allocation sees
enough pending tasks to scale out, as long as tasks keep `MIN_IMAGES_PER_TASK` images; and a multiple of
the slots where it can be, so that no wave of tasks ends with idle slots (on a cluster: once all its
executors are up). The images are dealt by a hash of their id, so tasks get about equal counts whatever
the folders' sizes, not by Spark's file packing, which sizes tasks by bytes and made tasks of a few
dozen small images (docs/performance.md, "What the job does, and the measurements behind it").

Each Arrow batch handed to a Python worker holds several inference batches, for fewer hand-offs
(measured with `bench/performance.py --tune`). It carries paths, not bytes: the worker reads an
inference batch's files just before decoding them, so its memory does not grow with the Arrow batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

IMAGES_PER_TASK = 2_000
MIN_IMAGES_PER_TASK = 100
TASKS_PER_SLOT = 2
INFERENCE_BATCHES_PER_ARROW_BATCH = 16
ARROW_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"


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


def featurize_tasks(images: int, slots: int) -> int:
    """The task count, a multiple of `slots` where tasks can keep `MIN_IMAGES_PER_TASK` images: with
    equal tasks, every wave of tasks then keeps every slot busy (7 tasks on 2 slots would leave one
    core idle for the last task's whole length)."""
    wanted = max(
        1,
        math.ceil(images / IMAGES_PER_TASK),
        min(TASKS_PER_SLOT * slots, images // MIN_IMAGES_PER_TASK),
    )
    for waves in (math.ceil(wanted / slots), wanted // slots):
        if waves and images // (waves * slots) >= MIN_IMAGES_PER_TASK:
            return waves * slots
    return wanted


def arrow_rows(batch_size: int) -> int:
    return batch_size * INFERENCE_BATCHES_PER_ARROW_BATCH


@contextmanager
def arrow_batches(spark: SparkSession, rows: int) -> Iterator[None]:
    """Arrow batches of `rows` rows for the Python work run inside (featurize: `arrow_rows`); the
    rest of the job gets Spark's default back."""
    previous = spark.conf.get(ARROW_ROWS, None)
    spark.conf.set(ARROW_ROWS, str(rows))
    try:
        yield
    finally:
        try:
            if previous is None:
                spark.conf.unset(ARROW_ROWS)
            else:
                spark.conf.set(ARROW_ROWS, previous)
        except Exception:  # the JVM is gone (the error in flight says why): keep that error, not this one
            log.warning("could not restore %s", ARROW_ROWS, exc_info=True)
