"""Write: the run's DataFrames as Parquet, the CSV files people open, and counts read back from disk."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType, StringType, StructField, StructType

from featurizer import storage
from featurizer.concat import concat_folder
from featurizer.model import PCA_COLUMN, PREDICTED_LABEL

# RFC 4180 quoting, so labels and paths with commas, quotes or non-ASCII letters read back intact. The
# line separator Spark writes is named so that the multi-line reader does not guess it: it would take
# "\r\n" from a value holding one, and see one row.
CSV_OPTIONS = {"header": "true", "escape": '"', "encoding": "UTF-8", "lineSep": "\n"}
# The headerless part files a single CSV file is joined from.
PART_OPTIONS = {**CSV_OPTIONS, "header": "false"}


def write_parquet(frame: DataFrame, uri: str) -> None:
    """Parquet, with float columns and float arrays (the features) written without dictionary encoding:
    their values almost never repeat, so the writer would build each column chunk's dictionary only to
    drop it. Other columns (labels, splits) keep it."""
    plain = {f"parquet.enable.dictionary#{path}": "false" for path in _float_column_paths(frame.schema)}
    frame.write.mode("overwrite").options(**plain).parquet(storage.spark_uri(uri))


def _float_column_paths(schema: StructType) -> list[str]:
    """Parquet column paths of the top-level float and double columns and arrays of them. Spark writes
    an array's values at `<name>.list.element`; with `spark.sql.parquet.writeLegacyFormat` (which the
    job does not set) the path would differ, and such arrays would keep their dictionary."""
    floats = (FloatType, DoubleType)
    paths = []
    for field in schema.fields:
        if isinstance(field.dataType, floats):
            paths.append(field.name)
        elif isinstance(field.dataType, ArrayType) and isinstance(field.dataType.elementType, floats):
            paths.append(f"{field.name}.list.element")
    return paths


def read_parquet(spark: SparkSession, uri: str, schema: StructType | None = None) -> DataFrame:
    """Parquet files as a DataFrame; a `schema` the caller knows spares Spark a job that opens a file."""
    reader = spark.read if schema is None else spark.read.schema(schema)
    return reader.parquet(storage.spark_uri(uri))


def write_single_csv(frame: DataFrame, uri: str, order_by: str) -> int:
    """One CSV file with one header, sorted by `order_by`; returns its number of rows.

    Every task writes its own part file: orderBy range-partitions the rows, so the part files in
    part-number order are sorted as a whole, and joining them after one header line gives the file.
    """
    scratch = f"{uri}._parts"
    frame.orderBy(order_by).write.mode("overwrite").options(**PART_OPTIONS).csv(storage.spark_uri(scratch))
    as_text = StructType([StructField(name, StringType()) for name in frame.columns])
    rows = (
        frame.sparkSession.read.options(multiLine="true", **PART_OPTIONS)
        .schema(as_text)
        .csv(storage.spark_uri(scratch))
        .count()
    )
    concat_folder(scratch, uri, csv_header(frame.columns))
    return rows


def csv_header(columns: Sequence[str]) -> bytes:
    """The header line as Spark's CSV writer writes one: quoted only where needed, UTF-8, ending in LF."""
    line = io.StringIO()
    csv.writer(line, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow(columns)
    return line.getvalue().encode("utf-8")


def scored(model: PipelineModel, vectors: DataFrame, k: int) -> DataFrame:
    """image_id, label, split, predicted_label, pca_1..pca_k for every featurized image (labelled or
    not): the whole pipeline in one pass, what `pca/` holds and evaluate counts.

    `vectors` are rows with `as_model_input` applied.
    """
    transformed = model.transform(vectors).withColumn("_pca", vector_to_array(F.col(PCA_COLUMN)))
    return transformed.select(
        "image_id",
        "label",
        "split",
        PREDICTED_LABEL,
        *(F.col("_pca")[i].alias(f"pca_{i + 1}") for i in range(k)),
    )
