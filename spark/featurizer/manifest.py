"""A completed run's record: counts read back from its outputs, `manifest.json`, `_COMPLETED.json`.

A run is declared complete only when what it wrote agrees with what it listed: every output has one row
per featurized image, and featurized + rejected = images found.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyspark
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from featurizer import __version__, storage
from featurizer.artifact import ModelArtifact
from featurizer.catalog import CatalogSummary
from featurizer.engines import engine_version
from featurizer.options import JobOptions
from featurizer.outputs import read_parquet
from featurizer.store import Reuse

COMPLETED_FLAG = "_COMPLETED.json"


class OutputMismatch(RuntimeError):
    """The outputs read back do not agree with each other: the run is not declared complete."""


def verified_counts(
    spark: SparkSession,
    run_uri: str,
    listing: CatalogSummary,
    through_model: int,
    reuse: Reuse,
    parquet: Mapping[str, StructType],
    csv_rows: Mapping[str, int],
) -> dict[str, Any]:
    """Counts read back from the written outputs; raises OutputMismatch unless they agree with each other
    and the listing. `parquet` names the Parquet outputs (with their schema); `csv_rows` are the counts
    `write_single_csv` read from the part files it joined byte for byte."""
    rows = {
        **{
            name: read_parquet(spark, storage.join(run_uri, name), schema).count()
            for name, schema in parquet.items()
        },
        **csv_rows,
    }
    featurized, rejected = rows["features"], rows["rejected_csv"]
    problems = [
        f"{name} has {count} rows, expected {featurized}"
        for name, count in rows.items()
        if name != "rejected_csv" and count != featurized
    ]
    if featurized + rejected != listing.images_found:
        problems.append(
            f"{featurized} featurized + {rejected} rejected != {listing.images_found} images found"
        )
    if problems:
        raise OutputMismatch("outputs disagree: " + "; ".join(problems))
    return {
        "files_found": listing.files_found,
        "files_ignored": listing.files_ignored,
        "images_found": listing.images_found,
        "images_featurized": featurized,
        "images_rejected": rejected,
        "images_unlabelled": listing.images_unlabelled,
        "images_through_model": through_model,
        **reuse.as_counts(featurized),
        "rows": rows,
    }


def fit_counts(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A fitting run's counts of its split and fit, beside those of its outputs."""
    return {
        "train_images": metrics["train_images"],
        "images_fitted": metrics["images_fitted"],
        "test_images": metrics["test_images"],
        "classes": len(metrics["per_class"]),
    }


def manifest(
    spark: SparkSession,
    options: JobOptions,
    model: ModelArtifact,
    counts: Mapping[str, Any],
    started_at: datetime,
    finished_at: datetime,
    self_test: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`manifest.json`: what the run read, with which options, versions and model, and its counts (and a
    self-test's findings)."""
    described = {
        "run_id": options.run_id,
        "input": options.input,
        "output": options.run_uri,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "counts": dict(counts),
        "options": options.as_dict(),
        "versions": {
            "featurizer": __version__,
            "python": platform.python_version(),
            "spark": spark.version,
            "pyspark": pyspark.__version__,
            "engine": engine_version(options.engine),
        },
        "region": storage.region(),
        "model": model.as_dict(),
    }
    if self_test is not None:
        described["self_test"] = dict(self_test)
    return described


def completion_record(
    options: JobOptions,
    counts: Mapping[str, Any],
    metrics: Mapping[str, Any],
    timings: Mapping[str, Any],
    report: str,
    finished_at: datetime,
) -> dict[str, Any]:
    """The `_COMPLETED.json` payload (docs/outputs.md): written last, once every output is in place."""
    return {
        "status": "COMPLETED",
        "run_id": options.run_id,
        "output": options.run_uri,
        "finished_at": finished_at.isoformat(),
        "report": report,
        "summary": {
            "images_found": counts["images_found"],
            "images_featurized": counts["images_featurized"],
            "images_rejected": counts["images_rejected"],
            **(_predicted(options, metrics) if options.model_run else _fitted(metrics)),
            "duration_seconds": timings["total_seconds"],
        },
    }


def _fitted(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {"accuracy": metrics["accuracy"], "weighted_f1": metrics["weighted_f1"]}


def _predicted(options: JobOptions, metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model_run": options.model_run,
        "images_classified": metrics["images_classified"],
        "predicted": metrics["predicted"],
        "images_scored": metrics["images_scored"],
        "accuracy": metrics["accuracy"],
    }


def summary_line(completed: Mapping[str, Any]) -> str:
    """The one line `featurizer run` (or `predict`) prints when a run completes."""
    s = completed["summary"]
    found = (
        f"{s['images_featurized']:,} images featurized, {s['images_rejected']:,} rejected "
        f"(of {s['images_found']:,} found)"
    )
    if "images_classified" in s:
        classes = ", ".join(f"{label} {n:,}" for label, n in s["predicted"].items() if n)
        scored = "" if s["accuracy"] is None else f"; accuracy {s['accuracy']:.3f} against their folders"
        outcome = f"{s['images_classified']:,} classified ({classes or 'none'}){scored}"
    else:
        outcome = f"accuracy {s['accuracy']:.3f}, weighted F1 {s['weighted_f1']:.3f}"
    return f"{found}; {outcome}; {s['duration_seconds']:.1f} s; outputs in {completed['output']}"
