"""What the end events of a run would have done, done again for runs whose events never came.

EventBridge delivers EMR Serverless state changes and S3 object events best-effort. Every run is recorded
open (common/records.py) and stays open until its end is e-mailed and, for a drop's run, its dataset is
released. The reconciler asks EMR for the state of each open run that is due; for a run that has ended it
does what the lost events would have done, through the same idempotent functions, so a late event and the
reconciler together still send one e-mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from common import records, tracking
from common.config import JobSettings
from common.models import TERMINAL_STATES
from common.runs import START_FAILED

logger = Logger(child=True)


@dataclass
class Reconciler:
    settings: JobSettings
    emr: Any
    table: Any
    release: Callable[[str, str, float], Any]  # (job_run_id, state, now): the RunEnded function's work
    notify: Callable[[str, str, str | None], Any]  # (job_run_id, state, details): the notice of the end

    def reconcile(self, run_id: str, now: float) -> str:
        """Check one open run; returns the state found (EMR's, or START_FAILED, or "CLOSED")."""
        run = records.get_run(self.table, run_id)
        if run is None or "sweep" not in run:
            return "CLOSED"
        job_run_id = tracking.job_run_of(
            run, emr=self.emr, table=self.table, application_id=self.settings.application_id
        )
        if job_run_id is None:
            if not tracking.never_started(run, now):
                records.reschedule_run(self.table, run_id, now + records.RECONCILE_INTERVAL_SECONDS)
                return "STARTING"
            # Its caller was told: the API answered the start's error, the sweep publishes a drop's notice.
            records.close_run(self.table, run_id)
            return START_FAILED
        job = self.emr.get_job_run(applicationId=self.settings.application_id, jobRunId=job_run_id)["jobRun"]
        state = str(job["state"])
        if state not in TERMINAL_STATES:
            records.reschedule_run(self.table, run_id, now + records.RECONCILE_INTERVAL_SECONDS)
            return state
        if records.is_done(run):  # handled, but closing it failed after the last mark
            records.close_run(self.table, run_id)
            return state
        logger.warning("run ended without its events being handled", extra={"run_id": run_id, "state": state})
        if run.get("trigger") == "drop" and records.RELEASED not in run:
            self.release(job_run_id, state, now)
        if records.NOTIFIED not in run:
            self.notify(job_run_id, state, job.get("stateDetails") or None)
        # Each step marks the run and the last one closes it; a run still open is checked again later.
        run = records.get_run(self.table, run_id)
        if run is not None and "sweep" in run:
            logger.warning("run still open after its end was handled", extra={"run_id": run_id})
            records.reschedule_run(self.table, run_id, now + records.RECONCILE_INTERVAL_SECONDS)
        return state
