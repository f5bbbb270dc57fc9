"""Drop-to-run handlers (three functions in template.yaml share this module).

- ``on_uploads``: SQS batches of S3 "Object Created" events for inbox/ -> per-unit debounce state (a
  dataset, or a prediction batch ``inbox/<dataset>/_predict/<batch>/``: common/drop_units.py); an
  ``_START`` marker in the unit's folder starts its run at once.
- ``on_tick``: EventBridge schedule (every minute) -> start the runs of datasets whose uploads have been quiet
  for QUIET_SECONDS as far as the uploads queue has been read (drop_to_run/backlog.py); retry or give up runs
  EMR did not accept.
- ``on_run_ended``: EMR Serverless job run SUCCESS/FAILED/CANCELLED -> release the dataset and start its next
  run if an ``_START`` marker waits (the sweep starts one for quiet uploads). Should that event be lost, the
  reconciler (reconcile/app.py) does the same.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, ExceptionInfo
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from common.config import DebounceSettings, JobSettings, StateSettings
from common.launch import idempotent_launcher
from common.models import TERMINAL_STATES, EmrJobRunStateChangeEvent
from drop_to_run.backlog import UploadsBacklog
from drop_to_run.debounce import UNMEASURED, Action, Upload
from drop_to_run.events import Ignored, UploadsQueueRecord, uploads_in
from drop_to_run.service import DropToRun
from drop_to_run.store import DatasetStore
from notify.publisher import idempotent_publisher

logger = Logger()
tracer = Tracer()
metrics = Metrics()

JOB = JobSettings.from_env()
STATE = StateSettings.from_env()
DEBOUNCE = DebounceSettings.from_env()

emr = boto3.client("emr-serverless")
sns = boto3.client("sns")
table = boto3.resource("dynamodb").Table(STATE.table_name)
backlog = UploadsBacklog(table, boto3.client("sqs"), DEBOUNCE.uploads_queue_url)

start_run_once, idempotency_config = idempotent_launcher(
    job=JOB, state=STATE, emr=emr, table=table, metrics=metrics
)


publish, publish_config = idempotent_publisher(
    state=STATE, sns=sns, topic_arn=DEBOUNCE.topic_arn, table=table, metrics=metrics
)

# A message that is no upload event fails alone (SQS delivers it again, then dead-letters it); the
# response lists it with the others, also when every message of the batch fails.
uploads_processor = BatchProcessor(
    event_type=EventType.SQS, model=UploadsQueueRecord, raise_on_entire_batch_failure=False, logger=logger
)

service = DropToRun(
    store=DatasetStore(table, DEBOUNCE.quiet_seconds),
    table=table,
    settings=JOB,
    quiet_seconds=DEBOUNCE.quiet_seconds,
    emr=emr,
    s3=boto3.client("s3"),
    launch=start_run_once,
    publish=publish,
)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def on_uploads(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config.register_lambda_context(context)
    publish_config.register_lambda_context(context)
    with uploads_processor(records=event["Records"], handler=uploads_of):
        parsed = [result for status, result, _ in uploads_processor.process() if status == "success"]
        failures = record_per_dataset(parsed)
        for record, error in failures:
            uploads_processor.failure_handler(record, error)
    failed = {record.messageId for record, _ in failures}
    record_watermark([record for record, _ in parsed if record.messageId not in failed])
    return uploads_processor.response()


def uploads_of(record: UploadsQueueRecord) -> tuple[UploadsQueueRecord, list[Upload | Ignored]]:
    """The objects one message reports (a message that is no upload event fails in the parser)."""
    return record, uploads_in(record.body)


def record_per_dataset(
    parsed: list[tuple[UploadsQueueRecord, list[Upload | Ignored]]],
) -> list[tuple[UploadsQueueRecord, ExceptionInfo]]:
    """One conditional write per dataset for the whole batch; returns each record of a dataset whose write
    failed, once, with the error, so that SQS delivers it again."""
    uploads_of_dataset: dict[str, list[Upload]] = defaultdict(list)
    records_of_dataset: dict[str, dict[str, UploadsQueueRecord]] = defaultdict(dict)
    ignored = 0
    for record, items in parsed:
        for item in items:
            if isinstance(item, Ignored):
                ignored += 1
                logger.debug("object ignored", extra={"key": item.key, "reason": item.reason})
                continue
            uploads_of_dataset[item.dataset].append(item)
            records_of_dataset[item.dataset][record.messageId] = record
    metrics.add_metric(name="UploadEventsIgnored", unit=MetricUnit.Count, value=ignored)
    failed: dict[str, tuple[UploadsQueueRecord, ExceptionInfo]] = {}
    for dataset, uploads in uploads_of_dataset.items():
        try:
            record_dataset_uploads(dataset, uploads)
        except Exception as exception:
            logger.exception("could not record uploads", extra={"dataset": dataset})
            error = (type(exception), exception, None)  # logged once above, not again for every record
            failed |= {
                message_id: (record, error) for message_id, record in records_of_dataset[dataset].items()
            }
    return list(failed.values())


def record_watermark(recorded: list[UploadsQueueRecord]) -> None:
    """After the batch's datasets: the newest message whose uploads are recorded. Should the write fail,
    the sweep takes the backlog for older until a later batch moves the watermark: never the wrong way."""
    if not recorded:
        return
    try:
        backlog.recorded(max(record.attributes.SentTimestamp for record in recorded).timestamp())
    except (BotoCoreError, ClientError):
        logger.exception("could not move the uploads watermark")


def record_dataset_uploads(dataset: str, uploads: list[Upload]) -> None:
    state = service.record(dataset, uploads)
    metrics.add_metric(name="UploadEventsRecorded", unit=MetricUnit.Count, value=len(uploads))
    if state.start_requested:
        # every object in this batch exists already, so the run claimed now covers all of them
        outcome = service.start_if_due(dataset, now=max(u.time for u in uploads), backlog_seconds=UNMEASURED)
        if outcome.run_id:
            logger.info("start marker", extra={"dataset": dataset, "run_id": outcome.run_id})


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def on_tick(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    publish_config.register_lambda_context(context)
    tick = parse(event=event, model=EventBridgeModel)
    now = tick.time.timestamp()  # the schedule's time: decisions follow the event stream, not the clock
    started: list[str] = []
    errors: list[str] = []
    due = list(service.store.due(now))
    backlog_seconds = uploads_backlog(now) if due else UNMEASURED
    for dataset in due:
        try:
            outcome = service.start_if_due(dataset, now, backlog_seconds)
        except Exception:
            logger.exception("sweep failed for dataset", extra={"dataset": dataset})
            errors.append(dataset)
            continue
        if outcome.action in (Action.CLAIM, Action.RELAUNCH) and outcome.job_run_id:
            started.append(outcome.run_id or "")
    if errors:
        metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=len(errors))
    return {"started": started, "errors": errors}


def uploads_backlog(now: float) -> float:
    """The uploads queue's backlog at ``now``. One that cannot be read starts no run for quiet uploads
    (counted in SweepErrors, which is alarmed); markers, relaunches and notices go on."""
    try:
        seconds = backlog.age(now)
    except (BotoCoreError, ClientError):
        logger.exception("could not read the uploads backlog: no run starts for quiet uploads this tick")
        metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=1)
        return UNMEASURED
    if seconds:
        logger.info("uploads queue has a backlog", extra={"backlog_seconds": seconds})
    return seconds


@logger.inject_lambda_context(correlation_id_path="detail.jobRunId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def on_run_ended(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    publish_config.register_lambda_context(context)
    change = parse(event=event, model=EmrJobRunStateChangeEvent)
    if change.detail.state not in TERMINAL_STATES:
        return {"released": False}
    outcome = service.run_ended(change.detail.job_run_id, change.detail.state, now=change.time.timestamp())
    return {"released": outcome is not None, "next_run_id": outcome.run_id if outcome else None}
