"""A local EMR Serverless application behind the real ``emr-serverless`` REST API (rest-json, as boto3 calls).

Operations (paths and shapes from botocore's service model, 2021-07-13): GetApplication, StartJobRun (with
clientToken idempotency), GetJobRun, ListJobRuns (``states``, ``maxResults``, ``nextToken``), CancelJobRun
and TagResource. Timestamps are epoch seconds, errors carry ``x-amzn-ErrorType`` and ``{"message": ...}``.
Requests are not SigV4-verified. The Lambdas reach it through ``AWS_ENDPOINT_URL_EMR_SERVERLESS``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from local.jobs import TERMINAL, JobExecution, JobRun, Runtime, new_job_run_id, stop_process_group
from local.template import ACCOUNT, REGION

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class Application:
    """One application (the template's EmrApplication) and its job runs."""

    def __init__(
        self,
        application: dict[str, Any],
        runtime: Runtime,
        emit: Callable[[JobRun, str], None],
        created_by: str,
    ) -> None:
        self.application = application
        self.created_by = created_by
        self.runtime = runtime
        self.emit = emit
        self.executions: dict[str, JobExecution] = {}
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    @property
    def id(self) -> str:
        return str(self.application["applicationId"])

    def start_job_run(self, request: dict[str, Any]) -> JobRun:
        for required in ("clientToken", "executionRoleArn", "jobDriver"):
            if not request.get(required):
                raise ApiError(400, "ValidationException", f"{required} is required")
        if "sparkSubmit" not in request["jobDriver"] or not request["jobDriver"]["sparkSubmit"].get(
            "entryPoint"
        ):
            raise ApiError(400, "ValidationException", "jobDriver.sparkSubmit.entryPoint is required")
        with self.lock:
            for execution in self.executions.values():  # the same clientToken returns the same job run
                if execution.run.client_token == request["clientToken"]:
                    return execution.run
            job_run_id = new_job_run_id()
            run = JobRun(
                application_id=self.id,
                arn=f"{self.application['arn']}/jobruns/{job_run_id}",
                job_run_id=job_run_id,
                name=request.get("name") or job_run_id,
                client_token=request["clientToken"],
                execution_role=request["executionRoleArn"],
                release_label=self.application["releaseLabel"],
                job_driver=request["jobDriver"],
                configuration_overrides=request.get("configurationOverrides") or {},
                tags=request.get("tags") or {},
                execution_timeout_minutes=int(request.get("executionTimeoutMinutes") or 720),
                created_by=self.created_by,
            )
            execution = JobExecution(run, self.runtime, self.emit)
            self.executions[job_run_id] = execution
        execution.announce_submitted()
        thread = threading.Thread(target=execution.execute, name=f"job-{job_run_id}", daemon=True)
        self.threads.append(thread)
        thread.start()
        return run

    def execution(self, job_run_id: str) -> JobExecution:
        try:
            return self.executions[job_run_id]
        except KeyError:
            raise ApiError(404, "ResourceNotFoundException", f"Job run {job_run_id} does not exist") from None

    def cancel_job_run(self, job_run_id: str) -> None:
        execution = self.execution(job_run_id)
        if execution.run.state in TERMINAL:
            raise ApiError(
                400, "ValidationException", f"Job run {job_run_id} is in {execution.run.state} state"
            )
        execution.request_cancel("Job run was cancelled by a CancelJobRun request")

    def list_job_runs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        with self.lock:  # StartJobRun adds executions meanwhile
            runs = [execution.run for execution in self.executions.values()]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        if query.get("states"):
            runs = [run for run in runs if run.state in set(query["states"])]
        start = int(query.get("nextToken", ["0"])[0])
        size = int(query.get("maxResults", ["50"])[0])
        page: dict[str, Any] = {"jobRuns": [run.summary() for run in runs[start : start + size]]}
        if start + size < len(runs):
            page["nextToken"] = str(start + size)
        return page

    def shutdown(self) -> None:
        """Stop every running job (its whole process group) and wait for the job threads."""
        for execution in list(self.executions.values()):
            execution.run.cancel_reason = "the local stack stopped"
            execution.run.cancel.set()
            if execution.run.process is not None:
                stop_process_group(execution.run.process)
        for thread in self.threads:
            thread.join(30)


ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/applications/(?P<app>[^/]+)$"), "get_application"),
    ("POST", re.compile(r"^/applications/(?P<app>[^/]+)/jobruns$"), "start_job_run"),
    ("GET", re.compile(r"^/applications/(?P<app>[^/]+)/jobruns$"), "list_job_runs"),
    ("GET", re.compile(r"^/applications/(?P<app>[^/]+)/jobruns/(?P<run>[^/]+)$"), "get_job_run"),
    ("DELETE", re.compile(r"^/applications/(?P<app>[^/]+)/jobruns/(?P<run>[^/]+)$"), "cancel_job_run"),
    ("POST", re.compile(r"^/tags/(?P<arn>.+)$"), "tag_resource"),
]


def dispatch(
    app: Application, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
) -> Any:
    for route_method, pattern, operation in ROUTES:
        match = pattern.match(path)
        if route_method != method or not match:
            continue
        params = {key: unquote(value) for key, value in match.groupdict().items()}
        if "app" in params and params["app"] != app.id:
            raise ApiError(404, "ResourceNotFoundException", f"Application {params['app']} does not exist")
        if operation == "get_application":
            return {"application": app.application}
        if operation == "start_job_run":
            run = app.start_job_run(body)
            return {"applicationId": app.id, "jobRunId": run.job_run_id, "arn": run.arn}
        if operation == "list_job_runs":
            return app.list_job_runs(query)
        if operation == "get_job_run":
            return {"jobRun": app.execution(params["run"]).run.describe()}
        if operation == "cancel_job_run":
            app.cancel_job_run(params["run"])
            return {"applicationId": app.id, "jobRunId": params["run"]}
        app.execution(params["arn"].rsplit("/", 1)[-1]).run.tags.update(body.get("tags", {}))
        return {}
    raise ApiError(404, "UnknownOperationException", f"no operation {method} {path}")


def make_server(app: Application, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
                status, payload, headers = (
                    200,
                    dispatch(app, self.command, url.path, parse_qs(url.query), body),
                    {},
                )
            except ApiError as error:
                status, payload = error.status, {"message": error.message}
                headers = {"x-amzn-ErrorType": error.kind}
            except json.JSONDecodeError:
                status, payload = 400, {"message": "the request body is not JSON"}
                headers = {"x-amzn-ErrorType": "ValidationException"}
            except Exception as error:  # answered as AWS does, not by closing the connection
                logger.exception("emr-serverless %s %s failed", self.command, url.path)
                status, payload = 500, {"message": f"{type(error).__name__}: {error}"}
                headers = {"x-amzn-ErrorType": "InternalServerException"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("emr-serverless %s", format % args)

    return ThreadingHTTPServer((host, port), Handler)


def application_record(
    application_id: str, name: str, release_label: str, capacity: dict[str, str]
) -> dict[str, Any]:
    now = time.time()
    return {
        "applicationId": application_id,
        "name": name,
        "arn": f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{application_id}",
        "releaseLabel": release_label,
        "type": "Spark",
        "state": "STARTED",
        "stateDetails": "",
        "createdAt": now,
        "updatedAt": now,
        "architecture": "X86_64",
        "maximumCapacity": capacity,
        "autoStartConfiguration": {"enabled": True},
        "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 15},
        "tags": {},
    }
