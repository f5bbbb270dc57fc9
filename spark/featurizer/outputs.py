"""Write: the run's DataFrames as Parquet, the CSV files people open, and counts read back from disk."""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurizer import storage
from featurizer.model import PCA_COLUMN, as_model_input, projection

# RFC 4180 quoting, so labels and paths with commas, quotes or non-ASCII letters read back intact.
CSV_OPTIONS = {"header": "true", "escape": '"', "encoding": "UTF-8"}


def write_parquet(frame: DataFrame, uri: str) -> None:
    frame.write.mode("overwrite").parquet(storage.spark_uri(uri))


def read_parquet(spark: SparkSession, uri: str) -> DataFrame:
    return spark.read.parquet(storage.spark_uri(uri))


def write_single_csv(frame: DataFrame, uri: str, order_by: str) -> None:
    """One CSV file with one header: Spark writes a single part file, which is then moved into place."""
    scratch = f"{uri}._parts"
    frame.orderBy(order_by).coalesce(1).write.mode("overwrite").options(**CSV_OPTIONS).csv(
        storage.spark_uri(scratch)
    )
    parts = [p for p in storage.list_files(scratch) if p.rsplit("/", 1)[-1].startswith("part-")]
    if len(parts) != 1:
        raise RuntimeError(f"expected one CSV part file under {scratch}, found {len(parts)}")
    storage.move(parts[0], uri)
    storage.delete_tree(scratch)


def count_csv_rows(spark: SparkSession, uri: str) -> int:
    return spark.read.options(multiLine="true", **CSV_OPTIONS).csv(storage.spark_uri(uri)).count()


def pca_projection(model: PipelineModel, features: DataFrame, k: int) -> DataFrame:
    """image_id, label, split, pca_1..pca_k for every featurized image (labelled or not)."""
    projected = (
        projection(model)
        .transform(as_model_input(features))
        .withColumn("_pca", vector_to_array(F.col(PCA_COLUMN)))
    )
    return projected.select(
        "image_id", "label", "split", *(F.col("_pca")[i].alias(f"pca_{i + 1}") for i in range(k))
    )
