"""Reconcile handler: every few minutes (and at once for a drop run whose lease came due), each open run
that is due is checked against EMR Serverless; one that ended is released and reported as its lost events
would have (reconcile/service.py). A run that fails to reconcile stays due and is tried again next time.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from common import records
from common.config import DebounceSettings, JobSettings, StateSettings
from common.launch import idempotent_launcher
from drop_to_run.service import DropToRun
from drop_to_run.store import DatasetStore
from notify.publisher import idempotent_publisher
from notify.service import Notifier
from reconcile.service import Reconciler

logger = Logger()
tracer = Tracer()
metrics = Metrics()

JOB = JobSettings.from_env()
STATE = StateSettings.from_env()
DEBOUNCE = DebounceSettings.from_env()

s3 = boto3.client("s3")
emr = boto3.client("emr-serverless")
sns = boto3.client("sns")
table = boto3.resource("dynamodb").Table(STATE.table_name)

start_run_once, launch_config = idempotent_launcher(
    job=JOB, state=STATE, emr=emr, table=table, metrics=metrics
)
publish, publish_config = idempotent_publisher(
    state=STATE, sns=sns, topic_arn=DEBOUNCE.topic_arn, table=table, metrics=metrics
)
drop = DropToRun(
    store=DatasetStore(table, DEBOUNCE.quiet_seconds),
    table=table,
    settings=JOB,
    quiet_seconds=DEBOUNCE.quiet_seconds,
    emr=emr,
    s3=s3,
    launch=start_run_once,
    publish=publish,
)
notifier = Notifier(settings=JOB, s3=s3, emr=emr, table=table, publish=publish)
reconciler = Reconciler(
    settings=JOB, emr=emr, table=table, release=drop.run_ended, notify=notifier.on_run_ended
)


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def on_schedule(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    launch_config.register_lambda_context(context)
    publish_config.register_lambda_context(context)
    now = parse(event=event, model=EventBridgeModel).time.timestamp()
    states: dict[str, str] = {}
    errors: list[str] = []
    for run_id in records.runs_due(table, now):
        try:
            states[run_id] = reconciler.reconcile(run_id, now)
        except Exception:
            logger.exception("could not reconcile run", extra={"run_id": run_id})
            errors.append(run_id)
    metrics.add_metric(name="RunsReconciled", unit=MetricUnit.Count, value=len(states))
    if errors:
        metrics.add_metric(name="ReconcileErrors", unit=MetricUnit.Count, value=len(errors))
    return {"reconciled": states, "errors": errors}
