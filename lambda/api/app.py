"""HTTP API (IAM authorization): start, inspect and cancel runs.

POST   /runs             {"input": "s3://<data-bucket>/inbox/<dataset>/", "options": {...}} -> 202
                         ... "dry_run": true: the run's plan (workers, hours, dollars), nothing started -> 200
GET    /runs             the caller's runs, newest first (?limit=&next=; operators: ?started_by=drop) -> 200
GET    /runs/{run_id}    state, EMR details, timings and metrics once complete               -> 200
DELETE /runs/{run_id}    cancel the EMR job run                                              -> 202
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from api.callers import Caller
from api.requests import (
    RequestValidationError,
    check_run_id,
    parse_list_query,
    parse_run_request,
    request_text,
)
from api.service import RunsApi
from common.config import AccessSettings, JobSettings, StateSettings
from common.errors import InvalidRequestError, PermissionMissingError, RunStartError
from common.launch import idempotent_launcher

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()

JOB = JobSettings.from_env()
STATE = StateSettings.from_env()
ACCESS = AccessSettings.from_env()
# Error codes with which AWS asks its caller to slow down: the API then answers 503 with Retry-After (as when
# AWS does not answer at all).
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
RETRY_AFTER_UNAVAILABLE_SECONDS = 5

s3 = boto3.client("s3", config=Config(signature_version="s3v4"))  # presigned report links: SigV4
emr = boto3.client("emr-serverless")
table = boto3.resource("dynamodb").Table(STATE.table_name)

start_run_once, idempotency_config = idempotent_launcher(
    job=JOB, state=STATE, emr=emr, table=table, metrics=metrics
)


runs = RunsApi(
    settings=JOB,
    access=ACCESS,
    claim_window_seconds=STATE.idempotency_ttl_seconds,
    s3=s3,
    emr=emr,
    table=table,
    launch=start_run_once,
)


def _json(status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, default=str),
        headers=headers,
    )


@app.post("/runs")
@tracer.capture_method
def create_run() -> Response:
    event = app.current_event
    request = parse_run_request(request_text(event.body, event.is_base64_encoded))
    caller = current_caller()
    if request.dry_run:
        planned = runs.plan_run(request)
        logger.info(
            "run planned", extra={"caller": caller.arn, "input": planned["input"], "fits": planned["fits"]}
        )
        return _json(200, planned)
    context = event.request_context
    requested_at = datetime.fromtimestamp(context.time_epoch / 1000, tz=UTC)
    created = runs.create_run(request, caller=caller, requested_at=requested_at)
    logger.set_correlation_id(created["run_id"])
    logger.info("run requested", extra={"caller": caller.arn, **created})
    status_url = f"https://{context.domain_name}/runs/{created['run_id']}"
    return _json(202, {**created, "status_url": status_url}, headers={"Location": status_url})


@app.get("/runs")
@tracer.capture_method
def list_runs() -> Response:
    query = parse_list_query(app.current_event.query_string_parameters)
    return _json(200, runs.list_runs(query, current_caller()))


@app.get("/runs/<run_id>")
@tracer.capture_method
def get_run(run_id: str) -> Response:
    logger.set_correlation_id(check_run_id(run_id))
    return _json(200, runs.run_status(run_id, current_caller()))


@app.delete("/runs/<run_id>")
@tracer.capture_method
def cancel_run(run_id: str) -> Response:
    logger.set_correlation_id(check_run_id(run_id))
    cancelled = runs.cancel_run(run_id, current_caller())
    logger.info("run cancelled", extra=cancelled)
    return _json(202, cancelled)


def current_caller() -> Caller:
    arn = app.current_event.request_context.authorizer.iam.user_arn
    return Caller.of(arn, ACCESS.operator_role_arn)


def _problem(status_code: int, error: str, problem: str, headers: dict[str, str] | None = None) -> Response:
    """A server-side error, told without internal details (they are logged, under the request id)."""
    request_id = app.current_event.request_context.request_id
    body = {"error": error, "field": None, "problem": f"{problem} (request id {request_id})"}
    return _json(status_code, body, headers=headers)


@app.exception_handler(InvalidRequestError)
def invalid_request(error: InvalidRequestError) -> Response:
    problems = error.problems if isinstance(error, RequestValidationError) else [(error.field, error.problem)]
    logger.info("request refused", extra={"status": error.status_code, "problems": problems})
    return _json(
        error.status_code,
        {
            "error": type(error).__name__,
            "field": error.field,
            "problem": error.problem,
            "problems": [{"field": field, "problem": problem} for field, problem in problems],
        },
        headers={"Retry-After": str(error.retry_after_seconds)} if error.retry_after_seconds else None,
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def already_in_progress(_: IdempotencyAlreadyInProgressError) -> Response:
    return _json(
        409,
        {"error": "InProgress", "field": "body", "problem": "an identical request is being processed; retry"},
        headers={"Retry-After": "2"},
    )


@app.exception_handler(PermissionMissingError)
def permission_missing(error: PermissionMissingError) -> Response:
    logger.exception("the function's role lacks a permission", extra={"action": error.action})
    return _problem(500, "PermissionMissing", f"the service's role lacks {error.action}: tell its operators")


@app.exception_handler(RunStartError)
def run_not_started(error: RunStartError) -> Response:
    logger.exception("EMR Serverless refused the run")
    if error.code in THROTTLING_CODES:
        return throttled()
    return _problem(
        502, "RunStartError", f"EMR Serverless refused to start the run ({error.code}); retry later"
    )


@app.exception_handler(ClientError)
def aws_error(error: ClientError) -> Response:
    code = error.response["Error"].get("Code", "unknown")
    reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
    if code == "TransactionCanceledException" and "ThrottlingError" in reasons:
        code = "ThrottlingException"  # a transaction refused because one of its writes was throttled
    service = error.operation_name
    logger.exception("AWS call failed", extra={"code": code, "operation": service})
    if code in THROTTLING_CODES:
        return throttled()
    return _problem(502, "UpstreamError", f"an AWS call ({service}) failed with {code}; retry later")


@app.exception_handler(IdempotencyPersistenceLayerError)
def idempotency_store_failed(error: IdempotencyPersistenceLayerError) -> Response:
    """Powertools wraps the errors of its own table calls: told apart by the cause, as AWS errors are."""
    cause = error.__cause__
    if isinstance(cause, ClientError):
        return aws_error(cause)
    if isinstance(cause, BotoCoreError):
        return aws_unreachable(cause)
    logger.exception("idempotency store failed")
    return _problem(
        502, "UpstreamError", "the service's state table could not be read or written; retry later"
    )


@app.exception_handler(BotoCoreError)
def aws_unreachable(error: BotoCoreError) -> Response:
    logger.exception("AWS did not answer")
    return _problem(
        503,
        "Unavailable",
        "an AWS service did not answer; retry",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
    )


def throttled() -> Response:
    return _problem(
        503,
        "Throttled",
        f"AWS is throttling this service; retry after {RETRY_AFTER_UNAVAILABLE_SECONDS} seconds",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)
