"""Turn run-output flags and EMR job state changes into one readable message per run outcome."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from common import records, tracking
from common.config import JobSettings
from common.cost import cost_of_run
from common.errors import UnreadableOutputError
from common.models import TERMINAL_STATES
from common.outputs import has_object, read_optional_run_json, read_run_json
from common.runs import COMPLETED_FLAG, FAILED_FLAG, RUNS_PREFIX, run_prefix
from notify.messages import Notice, failure_notice, success_notice

logger = Logger(child=True)

FLAG_KEY = re.compile(
    rf"{re.escape(RUNS_PREFIX)}(?P<dataset>[^/]+)/(?P<run_id>[^/]+)/"
    rf"(?P<flag>{re.escape(COMPLETED_FLAG)}|{re.escape(FAILED_FLAG)})"
)


@dataclass
class Notifier:
    settings: JobSettings
    s3: Any
    emr: Any
    table: Any
    publish: Callable[[Notice], Any]  # idempotent (key: notice.key)

    def on_flag(self, key: str) -> Notice | None:
        """``runs/<dataset>/<run_id>/_COMPLETED.json`` or ``_FAILED.json`` was written."""
        match = FLAG_KEY.fullmatch(key)
        if not match:
            logger.info("not a run flag", extra={"key": key})
            return None
        dataset, run_id = match["dataset"], match["run_id"]
        run = records.get_run(self.table, run_id)
        if run is None or run["dataset"] != dataset:
            logger.warning("flag of a run this service has no record of: ignored", extra={"key": key})
            return None
        notice = (
            self._success(dataset, run_id, run)
            if match["flag"] == COMPLETED_FLAG
            else self._failure(dataset=dataset, run_id=run_id)
        )
        if notice is not None:
            self.publish(notice)
        return notice

    def on_job_state(self, job_run_id: str, state: str, state_details: str | None) -> Notice | None:
        """EMR Serverless reported SUCCESS, FAILED or CANCELLED for a job run."""
        run = tracking.run_of_job_run(
            job_run_id, emr=self.emr, table=self.table, application_id=self.settings.application_id
        )
        dataset = str(run["dataset"]) if run else None
        run_id = str(run["run_id"]) if run else None
        flag = f"{run_prefix(dataset, run_id)}{COMPLETED_FLAG}" if dataset and run_id else None
        if dataset and run_id and flag and has_object(self.s3, self.settings.data_bucket, flag):
            # its outputs are complete, whatever ended the job run after (a cancel, the timeout): as GET says
            record = records.get_run(self.table, run_id)
            success = None if record is None else self._success(dataset, run_id, record, ended=True)
            if success is not None:
                self.publish(success)
            return success
        if state == "SUCCESS":
            state_details = state_details or f"the job ended without writing {COMPLETED_FLAG}"
        notice = self._failure(
            dataset=dataset,
            run_id=run_id,
            job_run_id=job_run_id,
            emr_state=state,
            state_details=state_details,
        )
        if notice is not None:
            self.publish(notice)
        return notice

    def on_run_ended(self, job_run_id: str, state: str, state_details: str | None) -> Notice | None:
        """The notice the end events would have sent, for a run whose events were lost (the reconciler):
        the flag's for a run that wrote one, else EMR's state change's."""
        run = tracking.run_of_job_run(
            job_run_id, emr=self.emr, table=self.table, application_id=self.settings.application_id
        )
        if run is not None:
            prefix = run_prefix(str(run["dataset"]), str(run["run_id"]))
            for flag in (COMPLETED_FLAG, FAILED_FLAG):
                if has_object(self.s3, self.settings.data_bucket, f"{prefix}{flag}"):
                    return self.on_flag(f"{prefix}{flag}")
        return self.on_job_state(job_run_id, state, state_details)

    def _success(self, dataset: str, run_id: str, run: dict[str, Any], ended: bool = False) -> Notice | None:
        """The success message, once the job run has ended and EMR has billed it. On the flag's event
        (not ``ended``), None while the job run runs or cannot be read: EMR's end event, or the reconciler,
        sends it with the cost; on that event, it is sent without the cost if the job run cannot be read."""
        prefix = run_prefix(dataset, run_id)
        try:
            completed = self._read_json(f"{prefix}{COMPLETED_FLAG}")
        except UnreadableOutputError as error:
            return self._failure(dataset=dataset, run_id=run_id, state_details=str(error))
        if completed is None:
            logger.warning("completion flag vanished", extra={"run_id": run_id})
            return None
        job = self._job_run(run)
        if not ended and (job is None or job.get("state") not in TERMINAL_STATES):
            logger.info("the success message waits for the job run's end", extra={"run_id": run_id})
            return None
        return success_notice(
            cost=None if job is None else cost_of_run(job, run, self.settings),
            bucket=self.settings.data_bucket,
            dataset=dataset,
            run_id=run_id,
            completed=completed,
            manifest=self._read_optional(f"{prefix}manifest.json"),
            metrics=self._read_optional(f"{prefix}metrics.json"),
            timings=self._read_optional(f"{prefix}timings.json"),
        )

    def _failure(
        self,
        *,
        dataset: str | None,
        run_id: str | None,
        job_run_id: str | None = None,
        emr_state: str | None = None,
        state_details: str | None = None,
    ) -> Notice:
        run = records.get_run(self.table, run_id) if run_id else None
        if run is not None and job_run_id is None:
            job_run_id = tracking.job_run_of(
                run, emr=self.emr, table=self.table, application_id=self.settings.application_id
            )
        if job_run_id and not state_details:
            emr_state, state_details = self._emr_state(job_run_id, emr_state)
        failed = (
            self._read_optional(f"{run_prefix(dataset, run_id)}{FAILED_FLAG}") if dataset and run_id else None
        )
        return failure_notice(
            bucket=self.settings.data_bucket,
            dataset=dataset,
            run_id=run_id,
            job_run_id=job_run_id,
            application_id=self.settings.application_id,
            emr_state=emr_state,
            state_details=state_details,
            failed=failed,
            log_uri=self.settings.job_log_uri(job_run_id) if job_run_id else None,
            input_uri=str(run["input"]) if run else None,
        )

    def _job_run(self, run: dict[str, Any]) -> dict[str, Any] | None:
        """The run's job run as GetJobRun gives it; None when it cannot be found or read (the message then
        goes without its cost rather than not at all)."""
        try:
            job_run_id = tracking.job_run_of(
                run, emr=self.emr, table=self.table, application_id=self.settings.application_id
            )
            if job_run_id is None:
                return None
            job: dict[str, Any] = self.emr.get_job_run(
                applicationId=self.settings.application_id, jobRunId=job_run_id
            )["jobRun"]
        except (ClientError, BotoCoreError):
            logger.warning(
                "could not read the EMR job run", exc_info=True, extra={"run_id": run.get("run_id")}
            )
            return None
        return job

    def _emr_state(self, job_run_id: str, known_state: str | None) -> tuple[str | None, str | None]:
        try:
            job = self.emr.get_job_run(applicationId=self.settings.application_id, jobRunId=job_run_id)
        except ClientError:
            logger.warning("could not read the EMR job run", exc_info=True, extra={"job_run_id": job_run_id})
            return known_state, None
        return known_state or job["jobRun"].get("state"), job["jobRun"].get("stateDetails") or None

    def _read_json(self, key: str) -> dict[str, Any] | None:
        return read_run_json(self.s3, self.settings.data_bucket, key)

    def _read_optional(self, key: str) -> dict[str, Any] | None:
        return read_optional_run_json(self.s3, self.settings.data_bucket, key)
