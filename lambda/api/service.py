"""What the API routes do, as plain functions over injected clients."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from api.callers import Caller
from api.requests import ListQuery, RunRequest, check_run_id, normalise_input, page_token
from common import records, tracking
from common.config import AccessSettings, JobSettings
from common.cost import cost_of_run
from common.errors import (
    InvalidRequestError,
    RunAlreadyFinishedError,
    RunNotFoundError,
    RunNotStartedError,
    TooManyRunsError,
    UnreadableOutputError,
)
from common.models import TERMINAL_STATES
from common.outputs import count_objects, has_object, read_optional_run_json, read_run_json
from common.plan import Plan, plan_run
from common.runs import (
    COMPLETED,
    COMPLETED_FLAG,
    FAILED,
    FAILED_FLAG,
    PREDICT_REFUSES,
    PROGRESS_FILE,
    REFIT_KEEPS,
    START_FAILED,
    STARTING,
    RunOptions,
    RunSpec,
    make_run_id,
    output_uri,
    run_prefix,
    split_s3_uri,
)
from common.trained import unusable

logger = Logger(child=True)

REPORT_LINK_SECONDS = 3600
UNKNOWN = "UNKNOWN"  # GET /runs: the state of a listed run EMR did not answer for
# How long a request may spend counting its input (the function's timeout is 30 s): S3 lists 1,000 keys a
# request, so some 10^5 objects; a larger input is "at least" that many, sized as the largest run allowed.
LISTING_BUDGET_SECONDS = 10
# A caller at the cap is told to retry after this long: runs take minutes, and the reconciler closes them.
RETRY_AFTER_CAP_SECONDS = 60


@dataclass
class RunsApi:
    settings: JobSettings
    access: AccessSettings
    claim_window_seconds: int
    s3: Any
    emr: Any
    table: Any
    launch: Callable[[RunSpec], dict[str, str]]  # idempotent EMR start (key: run_id)

    def plan_run(self, request: RunRequest) -> dict[str, Any]:
        """The run's plan (a dry run): nothing is started or recorded."""
        input_uri, dataset, planned = self._planned(request)
        return {
            "dry_run": True,
            "dataset": dataset,
            "input": input_uri,
            "options": request.options.model_dump(exclude_none=True),
            **planned.as_json(),
        }

    def _planned(self, request: RunRequest) -> tuple[str, str, Plan]:
        """The checked input (URI, dataset) and the plan of a run of it, as far as it was counted."""
        input_uri, prefix, dataset = normalise_input(request.input, self.settings.data_bucket)
        if request.from_run is not None and request.predict_with is not None:
            raise InvalidRequestError(
                "predict_with",
                "a run refits (from_run) or predicts (predict_with), not both: send one of them",
            )
        if request.from_run is not None:
            _check_refit_options(request.options, request.from_run)
        if request.predict_with is not None:
            _check_predict_options(request.options, request.predict_with)
        if request.options.engine == "tensorflow" and self.settings.tensorflow_env_archive_key is None:
            raise InvalidRequestError(
                "options.engine",
                "this deployment has no TensorFlow environment: leave engine unset (onnx), or deploy again "
                "with `packaging/deploy.py --with-tensorflow` (x86_64 only)",
            )
        if request.options.precision == "int8" and self.settings.int8_model_key is None:
            raise InvalidRequestError(
                "options.precision",
                "this deployment has no INT8 model: leave precision unset (fp32), or deploy again with "
                "`packaging/deploy.py --with-int8`",
            )
        size = count_objects(
            self.s3, self.settings.data_bucket, prefix, budget_seconds=LISTING_BUDGET_SECONDS
        )
        if not size.images:
            raise InvalidRequestError("input", f"no objects under {input_uri}; upload the images first")
        return input_uri, dataset, plan_run(size, self.settings.limits)

    def create_run(self, request: RunRequest, *, caller: Caller, requested_at: datetime) -> dict[str, Any]:
        input_uri, dataset, planned = self._planned(request)
        if not planned.fits:
            raise InvalidRequestError(
                "input", f'{" ".join(planned.problems)} ("dry_run": true gives the whole plan)'
            )
        options = request.options
        if request.from_run is not None:
            self._check_refit_source(dataset, request.from_run, caller)
        trained = None if request.predict_with is None else self._trained_run(request.predict_with, caller)
        fingerprint = hashlib.sha256(
            json.dumps(
                {
                    "caller": caller.arn,
                    "input": input_uri,
                    "options": options.model_dump(exclude_none=True),
                    "from_run": request.from_run,
                    "predict_with": request.predict_with,
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        run_id = records.claim_run_id(
            self.table,
            fingerprint,
            lambda: make_run_id(dataset, requested_at, salt=fingerprint),
            window_seconds=self.claim_window_seconds,
        )
        spec = RunSpec(
            run_id=run_id,
            dataset=dataset,
            input_uri=input_uri,
            output_uri=output_uri(self.settings.data_bucket, dataset),
            options=options,
            trigger="api",
            requested_by=caller.arn,
            input_size=planned.size,
            from_run=request.from_run,
            predict_with=request.predict_with,
            predict_with_uri=None if trained is None else trained["output"],
        )
        if records.get_run(self.table, run_id) is None:  # a retried request's run is not counted twice
            self._check_cap(caller)
        started = self.launch(spec)
        return {
            "run_id": run_id,
            "jobRunId": started["job_run_id"],
            "dataset": dataset,
            "input": input_uri,
            "options": options.model_dump(exclude_none=True),
            "output": started["output"],
        }

    def _check_refit_source(self, dataset: str, from_run: str, caller: Caller) -> None:
        """A refit reads a completed run of its own dataset that the caller may see (404 or 403 as for
        GET /runs/{from_run}): anything else is the caller's mistake, told before anything starts."""
        check_run_id(from_run, field="from_run")
        source = self._run_of(from_run, caller)
        if source.get("dataset") != dataset:
            raise InvalidRequestError(
                "from_run",
                f"run {from_run} is of dataset {source.get('dataset')!r}, not {dataset!r}: refit from a run "
                "of the input's own dataset",
            )
        flag = f"{run_prefix(dataset, from_run)}{COMPLETED_FLAG}"
        if not has_object(self.s3, self.settings.data_bucket, flag):
            raise InvalidRequestError(
                "from_run",
                f"run {from_run} of dataset {dataset!r} has not completed (GET /runs/{from_run} says where "
                "it is): refit from a completed run of the same dataset",
            )

    def _trained_run(self, run_id: str, caller: Caller) -> dict[str, Any]:
        """A predict run's trained run: a completed run the caller may see (404 or 403 as for GET
        /runs/{run_id}), of the onnx engine the predict runs on; its record."""
        check_run_id(run_id, field="predict_with")
        trained = self._run_of(run_id, caller)
        try:
            problem = unusable(self.s3, self.settings.data_bucket, trained["dataset"], run_id)
        except UnreadableOutputError as error:
            problem = f"run {run_id}'s outputs are not the job's ({error}): predict with another run"
        if problem:
            raise InvalidRequestError("predict_with", problem)
        return trained

    def _check_cap(self, caller: Caller) -> None:
        cap = self.access.max_runs_in_flight_per_caller
        in_flight = records.runs_in_flight(self.table, caller.arn)
        if in_flight >= cap:
            raise TooManyRunsError(in_flight, cap, RETRY_AFTER_CAP_SECONDS)

    def _run_of(self, run_id: str, caller: Caller) -> dict[str, Any]:
        run = records.get_run(self.table, run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        caller.check_may_access(run)
        return run

    def run_status(self, run_id: str, caller: Caller) -> dict[str, Any]:
        run = self._run_of(run_id, caller)
        status: dict[str, Any] = {
            "run_id": run_id,
            "dataset": run["dataset"],
            "input": run["input"],
            "output": run["output"],
            "options": run.get("options", {}),
            "trigger": run["trigger"],
            "created_at": run["created_at"],
            **{name: run[name] for name in ("from_run", "predict_with") if run.get(name)},
        }
        job_run_id = self._job_run_of(run)
        if job_run_id is None:
            return {**status, **_not_started(run)}
        job = self._job_run(job_run_id)
        emr_state, state_details = str(job["state"]), job.get("stateDetails") or None
        status |= {
            "state": emr_state,
            "emr": {
                "application_id": run["application_id"],
                "job_run_id": job_run_id,
                "state": emr_state,
                "state_details": state_details,
            },
            "logs": self.settings.job_log_uri(job_run_id),
        }
        if cost := cost_of_run(job, run, self.settings):
            status["cost"] = cost
        prefix = run_prefix(str(run["dataset"]), run_id)
        try:
            completed = self._read_json(f"{prefix}{COMPLETED_FLAG}")
            failed = self._read_json(f"{prefix}{FAILED_FLAG}")
        except UnreadableOutputError as error:
            return {**status, "state": FAILED, "failure": {"message": str(error)}}
        if completed is not None:
            status["state"] = COMPLETED
            status["summary"] = completed.get("summary", {})
            status["finished_at"] = completed.get("finished_at")
            status["timings"] = self._read_optional(f"{prefix}timings.json")
            status["metrics"] = self._read_optional(f"{prefix}metrics.json")
            if isinstance(completed.get("report"), str):
                status["report"] = self._report(completed["report"])
        elif failed is not None:
            status["state"] = FAILED
            status["failure"] = {k: failed.get(k) for k in ("stage", "error", "message", "finished_at")}
        elif emr_state == "SUCCESS":
            status["state"] = FAILED
            status["failure"] = {"message": f"the job ended without writing {COMPLETED_FLAG}"}
        elif emr_state in TERMINAL_STATES:
            status["failure"] = {"message": state_details}
        elif progress := _progress(self._read_optional(f"{prefix}{PROGRESS_FILE}")):
            status["progress"] = progress
        return status

    def list_runs(self, query: ListQuery, caller: Caller) -> dict[str, Any]:
        """A page of the caller's runs (an operator's: of the drops' with ``started_by=drop``), newest first,
        each with its EMR state; GET /runs/{run_id} gives one run whole, and whether it completed."""
        if query.drops and not caller.is_operator:
            raise InvalidRequestError(
                "started_by", "drop runs belong to no caller: only the operator role lists them", 403
            )
        listed_by = records.DROP_RUNS if query.drops else caller.arn
        if query.after is not None and query.after["listed_by"] != listed_by:
            raise InvalidRequestError(
                "next",
                "is a token of another listing: send it with the started_by and as the caller of the page "
                "that gave it",
            )
        items, last = records.list_runs(self.table, listed_by, query.limit, query.after)
        return {"runs": [self._listed(item) for item in items], "next": last and page_token(last)}

    def _listed(self, run: dict[str, Any]) -> dict[str, Any]:
        """A listed run and its EMR state: UNKNOWN when EMR does not answer for it, so that one job run
        does not fail the page."""
        listed = {name: run[name] for name in (*records.LISTED, "created_at") if run.get(name)}
        job_run_id = run.get("job_run_id")
        if job_run_id is None:
            return {**listed, "state": _not_started(run)["state"]}
        try:
            return {**listed, "state": self._emr_state(job_run_id)[0]}
        except (ClientError, BotoCoreError):
            logger.warning("no state for a listed run", extra={"run_id": run.get("run_id")}, exc_info=True)
            return {**listed, "state": UNKNOWN}

    def cancel_run(self, run_id: str, caller: Caller) -> dict[str, Any]:
        run = self._run_of(run_id, caller)
        job_run_id = self._job_run_of(run)
        if job_run_id is None:
            raise RunNotStartedError(run_id, _not_started(run).get("failure", {}).get("message"))
        state, _ = self._emr_state(job_run_id)
        if state in TERMINAL_STATES:
            raise RunAlreadyFinishedError(run_id, state)
        try:
            self.emr.cancel_job_run(applicationId=self.settings.application_id, jobRunId=job_run_id)
        except ClientError as error:  # it ended between the read and the cancel: EMR refuses to cancel it
            if error.response["Error"]["Code"] != "ValidationException":
                raise
            state, _ = self._emr_state(job_run_id)
            if state not in TERMINAL_STATES:
                raise
            raise RunAlreadyFinishedError(run_id, state) from None
        return {"run_id": run_id, "jobRunId": job_run_id, "state": "CANCELLING"}

    def _report(self, uri: str) -> dict[str, str]:
        """The report's S3 URI and a presigned HTTPS link to it that a browser opens (valid up to an hour);
        only a report inside the run's own bucket is linked."""
        try:
            bucket, key = split_s3_uri(uri)
        except ValueError:
            return {"uri": uri}
        if bucket != self.settings.data_bucket:
            return {"uri": uri}
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=REPORT_LINK_SECONDS
        )
        return {"uri": uri, "url": url}

    def _job_run_of(self, run: dict[str, Any]) -> str | None:
        return tracking.job_run_of(
            run, emr=self.emr, table=self.table, application_id=self.settings.application_id
        )

    def _job_run(self, job_run_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.emr.get_job_run(
            applicationId=self.settings.application_id, jobRunId=job_run_id
        )["jobRun"]
        return job

    def _emr_state(self, job_run_id: str) -> tuple[str, str | None]:
        job = self._job_run(job_run_id)
        return str(job["state"]), job.get("stateDetails") or None

    def _read_json(self, key: str) -> dict[str, Any] | None:
        return read_run_json(self.s3, self.settings.data_bucket, key)

    def _read_optional(self, key: str) -> dict[str, Any] | None:
        return read_optional_run_json(self.s3, self.settings.data_bucket, key)


def _progress(published: dict[str, Any] | None) -> dict[str, Any] | None:
    """The job's progress.json as GET shows it: its four fields, each of its type, or nothing."""
    if not published or not isinstance(published.get("stage"), str):
        return None
    counts = {name: published.get(name) for name in ("images_done", "images_total")}
    if not all(value is None or type(value) is int for value in counts.values()):
        return None
    updated = published.get("updated_at")
    return {
        "stage": published["stage"][:64],
        **counts,
        "updated_at": updated if isinstance(updated, str) else None,
    }


def _not_started(run: dict[str, Any]) -> dict[str, Any]:
    """The state of a run on record that has no job run: still starting, or refused or lost on the way."""
    if not tracking.never_started(run):
        return {"state": STARTING}
    reason = run.get("start_error") or "EMR Serverless started no job run for it (the start did not complete)"
    return {"state": START_FAILED, "failure": {"message": reason}}


def _check_predict_options(options: RunOptions, predict_with: str) -> None:
    """A predict run applies its trained run's model and pipeline: an option that would choose others is
    refused, not ignored."""
    for name in PREDICT_REFUSES:
        if getattr(options, name) not in (None, False):  # a switch left off is no option
            raise InvalidRequestError(
                f"options.{name}",
                f"is not taken by a predict run: the model and pipeline of run {predict_with} decide the "
                f"features and the classes; leave {name} out",
            )


def _check_refit_options(options: RunOptions, from_run: str) -> None:
    """A refit keeps its source's split and features: an option that would choose others is refused, not
    ignored."""
    for name in REFIT_KEEPS:
        if getattr(options, name) is not None:
            raise InvalidRequestError(
                f"options.{name}",
                f"is not taken by a refit: it keeps the train/test split and features of run {from_run}; "
                f"leave {name} out, or start a run without from_run to featurize and split the images again",
            )
