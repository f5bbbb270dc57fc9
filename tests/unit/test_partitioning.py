from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from featurizer.catalog import scan
from featurizer.partitioning import (
    ARROW_ROWS,
    IMAGES_PER_TASK,
    InputSize,
    arrow_rows,
    featurize_partitioning,
    featurize_tasks,
    file_settings,
)


@pytest.mark.parametrize(
    ("files", "slots", "tasks"),
    [
        (1, 2, 1),
        (150, 2, 1),  # too few images to split below 100 per task
        (1_000, 2, 4),  # two tasks per slot
        (10_812, 2, 6),  # tasks of at most 2,000 images
        (10_812, 80, 108),  # a large application: 100 images per task, so executors get work
        (100_000_000, 400, 50_000),
    ],
)
def test_task_count_follows_the_number_of_images(files: int, slots: int, tasks: int) -> None:
    assert featurize_tasks(files, slots) == tasks


def test_settings_weigh_each_file_by_its_bytes_plus_the_average_file() -> None:
    settings = file_settings(InputSize(files=10_000, bytes=50_000_000), tasks=5)

    assert settings == {
        "spark.sql.files.maxPartitionBytes": "20000000",
        "spark.sql.files.openCostInBytes": "5000",
        "spark.sql.files.minPartitionNum": "5",
    }


@pytest.mark.parametrize(
    ("average_bytes", "rows"),
    [
        (4_400, 256),  # 100x100 JPEGs: 16 inference batches per Arrow batch
        (870_000, 32),  # 1600x1200 photos: two batches stay under 32 MB
        (5_400_000, 16),  # 12 MP photos: one inference batch, whatever its size
    ],
)
def test_arrow_batches_hold_whole_inference_batches_up_to_a_byte_budget(
    average_bytes: int, rows: int
) -> None:
    assert arrow_rows(InputSize(files=1_000, bytes=1_000 * average_bytes), batch_size=16) == rows


def test_the_input_scan_gets_the_planned_tasks_and_later_reads_get_spark_defaults(
    spark: SparkSession, tmp_path: Path
) -> None:
    for index in range(1_000):
        (tmp_path / f"{index:04d}.jpg").write_bytes(b"\xff\xd8\xff" + bytes(index % 97))
    scanned = scan(spark, str(tmp_path))
    size = InputSize.of(scanned)
    defaults = spark.conf.get("spark.sql.files.openCostInBytes")

    with featurize_partitioning(spark, size, batch_size=16) as tasks:
        partitions = scanned.select("path", "content").rdd.getNumPartitions()
        arrow = spark.conf.get(ARROW_ROWS)

    assert size.files == 1_000
    assert size.bytes == sum(3 + index % 97 for index in range(1_000))
    assert tasks == featurize_tasks(1_000, spark.sparkContext.defaultParallelism)
    assert abs(partitions - tasks) <= 1
    assert arrow == str(arrow_rows(size, 16))
    assert spark.conf.get("spark.sql.files.openCostInBytes") == defaults
    assert scanned.rdd.getNumPartitions() > 1_000 // IMAGES_PER_TASK + 1  # Spark's own packing again
