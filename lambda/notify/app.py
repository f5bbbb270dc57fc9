"""Notify handler: one readable SNS message per finished run.

Events (EventBridge):
- S3 "Object Created" for ``runs/<dataset>/<run_id>/_COMPLETED.json`` -> success message with the counts from
  manifest.json, the accuracy from metrics.json and the cost, once EMR has ended (and billed) the job run;
  before that, nothing. ``_FAILED.json`` -> failure message with the stage.
- "EMR Serverless Job Run State Change" SUCCESS, FAILED or CANCELLED of a run that wrote ``_COMPLETED.json``
  -> that success message (the usual way it is sent: the flag comes first); FAILED or CANCELLED otherwise ->
  failure message with EMR's reason and the log location; SUCCESS without a ``_COMPLETED.json`` -> failure
  message too. An outcome reported by both the flag and EMR is sent once (idempotency key
  ``succeeded#<run_id>`` or ``failed#<run_id>``).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.config import JobSettings, StateSettings, env
from common.models import EmrJobRunStateChangeEvent
from notify.publisher import idempotent_publisher
from notify.service import Notifier

logger = Logger()
tracer = Tracer()
metrics = Metrics()

JOB = JobSettings.from_env()
STATE = StateSettings.from_env()
TOPIC_ARN = env("TOPIC_ARN")

s3 = boto3.client("s3")
emr = boto3.client("emr-serverless")
sns = boto3.client("sns")
table = boto3.resource("dynamodb").Table(STATE.table_name)

publish, idempotency_config = idempotent_publisher(
    state=STATE, sns=sns, topic_arn=TOPIC_ARN, table=table, metrics=metrics
)
notifier = Notifier(settings=JOB, s3=s3, emr=emr, table=table, publish=publish)


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    envelope = parse(event=event, model=EventBridgeModel)
    if envelope.detail_type == "Object Created":
        key = parse(event=event, model=S3EventNotificationEventBridgeModel).detail.object.key
        notice = notifier.on_flag(key)
    elif envelope.detail_type == "EMR Serverless Job Run State Change":
        detail = parse(event=event, model=EmrJobRunStateChangeEvent).detail
        notice = notifier.on_job_state(detail.job_run_id, detail.state, detail.state_details)
    else:
        logger.warning("unexpected event", extra={"detail_type": envelope.detail_type})
        notice = None
    if notice is None:
        return {"published": None}
    logger.set_correlation_id(notice.key.split("#", 1)[1])
    logger.info("run notice", extra={"key": notice.key, "subject": notice.subject})
    return {"published": notice.key, "subject": notice.subject}
