"""Which runs a predict run may apply: completed runs that fitted a pipeline on the onnx engine's features.

The API checks the run a caller names (``predict_with``); a drop into a prediction batch takes the dataset's
newest such run. The job checks the models themselves before any Spark work (spark/featurizer/sources.py).
"""

from __future__ import annotations

from typing import Any

from common.outputs import permission, read_optional_run_json, read_run_json
from common.runs import COMPLETED_FLAG, RUNS_PREFIX, run_prefix

# The newest runs of a dataset a drop looks through for a trained one (each costs a GET or two): runs that
# failed or predicted in between are skipped, and a dataset with more than this many in a row is told so.
NEWEST_RUNS_LOOKED_AT = 25


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
    """The newest of the dataset's last NEWEST_RUNS_LOOKED_AT runs that a predict run may apply (run ids
    of one dataset sort by their start time: common/runs.py make_run_id); None if there is none."""
    prefix = f"{RUNS_PREFIX}{dataset}/"
    run_ids: list[str] = []
    with permission("s3:ListBucket", bucket, prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            run_ids += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
    newest = sorted(run_ids, reverse=True)[:NEWEST_RUNS_LOOKED_AT]
    return next((run_id for run_id in newest if unusable(s3, bucket, dataset, run_id) is None), None)
