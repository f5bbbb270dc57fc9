"""Which runs a predict run may apply: completed runs that fitted a pipeline on the onnx engine's features.

The API checks the run a caller names (``predict_with``); a drop into a prediction batch takes the dataset's
newest such run. The job checks the models themselves before any Spark work (spark/featurizer/sources.py).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from common.errors import UnreadableOutputError
from common.outputs import permission, read_optional_run_json, read_run_json
from common.runs import COMPLETED_FLAG, RUNS_PREFIX, is_valid_run_id, run_prefix

logger = Logger(child=True)

# How long a drop looks through a dataset's runs, newest first, for a trained one (a GET or two each, so
# some hundreds of runs): the predict runs and failed runs since the last trained run are skipped.
LOOKUP_BUDGET_SECONDS = 10


def unusable(s3: Any, bucket: str, dataset: str, run_id: str) -> str | None:
    """Why run ``run_id`` of ``dataset`` cannot be predicted with, told as the fix; None when it can."""
    prefix = run_prefix(dataset, run_id)
    completed = read_run_json(s3, bucket, f"{prefix}{COMPLETED_FLAG}")
    if completed is None:
        return (
            f"run {run_id} has not completed (GET /runs/{run_id} says where it is): predict with a "
            "completed run"
        )
    if source := completed.get("summary", {}).get("model_run"):  # the trained run's folder
        return (
            f"run {run_id} is a predict run, which fitted no pipeline: predict with the run it predicted "
            f"with ({str(source).rstrip('/').rsplit('/', 1)[-1]}), or another run that trained one"
        )
    # A refit's record has no engine (it takes none): its manifest has the one it featurized with.
    manifest = read_optional_run_json(s3, bucket, f"{prefix}manifest.json") or {}
    if manifest.get("options", {}).get("engine") == "tensorflow":
        return (
            f"run {run_id} featurized with the tensorflow engine, and predict runs use the onnx engine's "
            "environment: train a run with the default engine and predict with it"
        )
    return None


def latest_trained_run(s3: Any, bucket: str, dataset: str) -> str | None:
    """The dataset's newest run that a predict run may apply, as far as LOOKUP_BUDGET_SECONDS reaches (run
    ids of one dataset sort by their start time: common/runs.py make_run_id); None if none was found. A
    run whose outputs are not the job's is skipped."""
    prefix = f"{RUNS_PREFIX}{dataset}/"
    run_ids: list[str] = []
    with permission("s3:ListBucket", bucket, prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            names = (p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", []))
            run_ids += [name for name in names if name.startswith(f"{dataset}-") and is_valid_run_id(name)]
    deadline = time.monotonic() + LOOKUP_BUDGET_SECONDS
    for run_id in sorted(run_ids, reverse=True):
        if time.monotonic() >= deadline:
            return None
        try:
            if unusable(s3, bucket, dataset, run_id) is None:
                return run_id
        except UnreadableOutputError:
            logger.warning("run outputs not the job's: skipped", extra={"run_id": run_id})
    return None
