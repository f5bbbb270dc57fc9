"""From a run's record to its EMR job run and back, also when the write that links them was lost.

A run is recorded before StartJobRun and linked to its job run after it (`records.record_job_run`). Should
that second write fail, the job run still carries the run id as its name: these lookups find it there and
write the link, so a started run is never lost to GET, DELETE or the end-of-run events.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from common import records
from common.runs import is_valid_run_id

# A run still without a job run this long after it was recorded was never started (its start failed
# before EMR answered, and no job run bears its name).
START_GRACE_SECONDS = 300


def job_run_of(run: dict[str, Any], *, emr: Any, table: Any, application_id: str) -> str | None:
    """The run's job run id: from its record, else the job run named after it, created since it was
    recorded (the link is written then)."""
    if "job_run_id" in run:
        return str(run["job_run_id"])
    since = datetime.fromisoformat(run["created_at"]) - timedelta(minutes=1)
    try:
        pages = emr.get_paginator("list_job_runs").paginate(
            applicationId=application_id, createdAtAfter=since
        )
        found = next(
            (job["id"] for page in pages for job in page["jobRuns"] if job.get("name") == run["run_id"]), None
        )
    except emr.exceptions.ResourceNotFoundException:  # no job run on the application at all
        found = None
    if found:
        records.record_job_run(table, run["run_id"], run["dataset"], found, run.get("requested_by", ""))
    return found


def never_started(run: dict[str, Any], now: float | None = None) -> bool:
    """Whether a run without a job run is past the time in which its start could still be answered."""
    recorded = datetime.fromisoformat(run["created_at"]).timestamp()
    return (
        bool(run.get("start_error")) or (time.time() if now is None else now) > recorded + START_GRACE_SECONDS
    )


def run_of_job_run(job_run_id: str, *, emr: Any, table: Any, application_id: str) -> dict[str, Any] | None:
    """The run id and dataset of the run a job run belongs to: from the index, else by the job run's name
    (the link is written then); None for a job run this service did not start."""
    indexed = records.get_run_of_job_run(table, job_run_id)
    if indexed is not None:
        return indexed
    try:
        name = emr.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"].get("name") or ""
    except ClientError:
        return None
    run = records.get_run(table, name) if is_valid_run_id(name) else None
    if run is None or run.get("job_run_id", job_run_id) != job_run_id:
        return None
    if "job_run_id" not in run:
        records.record_job_run(table, run["run_id"], run["dataset"], job_run_id, run.get("requested_by", ""))
    return {"run_id": run["run_id"], "dataset": run["dataset"]}
