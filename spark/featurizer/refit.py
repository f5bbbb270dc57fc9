"""Refit: a completed run's featurized images as the input of a new run's persist -> fit -> evaluate ->
write, so that another PCA or classifier setting costs no image read and no CNN.

The completed run's `features/` holds every image it featurized (id, path, label, split, the model's
floats) and its `rejected.csv` every image it could not; together they are what its featurize stage
staged, for the very listing its manifest counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurizer import storage
from featurizer.artifact import ModelArtifact
from featurizer.catalog import CatalogSummary
from featurizer.featurize import FEATURIZED_SCHEMA
from featurizer.manifest import COMPLETED_FLAG
from featurizer.outputs import CSV_OPTIONS, read_parquet


class NotARefitSource(ValueError):
    """--from-run names no completed run, or the refit would replace it."""


def completed_manifest(from_run: str, run_uri: str) -> dict[str, Any]:
    """The manifest of the completed run at `from_run`; NotARefitSource, saying why, otherwise."""
    source = from_run.rstrip("/")
    one, other = _comparable(source), _comparable(run_uri)
    if one == other or one.startswith(f"{other}/") or other.startswith(f"{one}/"):
        raise NotARefitSource(
            f"--from-run {from_run} is the run this refit would write (and replace): give the refit "
            "another --run-id"
        )
    try:
        completed = storage.exists(storage.join(source, COMPLETED_FLAG))
        manifest = storage.read_bytes(storage.join(source, "manifest.json")) if completed else None
    except Exception as error:  # botocore: access, endpoint
        raise NotARefitSource(f"--from-run {from_run} cannot be read: {error}") from error
    if manifest is None:
        raise NotARefitSource(
            f"--from-run {from_run} is not a completed run (no {COMPLETED_FLAG} there): refit from a run "
            "that finished"
        )
    described: dict[str, Any] = json.loads(manifest)
    return described


def _comparable(uri: str) -> str:
    """A location as one spelling: absolute local paths (links resolved), s3:// for s3a://."""
    if storage.is_s3(uri):
        return "s3://" + uri.split("://", 1)[1].rstrip("/")
    return str(storage.local_path(uri).expanduser().resolve())


def model_of(described: dict[str, Any]) -> ModelArtifact:
    """The model the source run featurized with: the refit's features are that model's."""
    model = described["model"]
    return ModelArtifact(
        path=Path(model["model_file"].rsplit("/", 1)[-1]),
        source=model["model_file"],
        sha256=model["model_sha256"],
        weights_source=model["weights"],
        weights_sha256=model["weights_sha256"],
    )


def listing_of(described: dict[str, Any]) -> CatalogSummary:
    counts = described["counts"]
    return CatalogSummary(counts["files_found"], counts["images_found"], counts["images_unlabelled"])


def staged_rows(spark: SparkSession, from_run: str) -> DataFrame:
    """The source run's images as its featurize stage staged them (FEATURIZED_SCHEMA)."""
    features = spark.createDataFrame([], FEATURIZED_SCHEMA).schema["features"].dataType
    featurized = read_parquet(spark, storage.join(from_run, "features")).select(
        "image_id", "path", "label", "split", "features", F.lit(None).cast("string").alias("error")
    )
    rejected = (
        spark.read.options(multiLine="true", **CSV_OPTIONS)
        .schema("path string, reason string")
        .csv(storage.spark_uri(storage.join(from_run, "rejected.csv")))
    )
    unread = rejected.select(
        F.lit(None).cast("string").alias("image_id"),
        "path",
        F.lit(None).cast("string").alias("label"),
        F.lit(None).cast("string").alias("split"),
        F.lit(None).cast(features).alias("features"),
        F.col("reason").alias("error"),
    )
    return featurized.unionByName(unread)
