"""Publishing a run's notice at most once, for every function that sends one (notify, sweep, reconciler).

The publish is guarded by Powertools idempotency (key: the notice's key), so the events and the reconciler
reporting the same outcome at once send one e-mail. Once it is sent, the run record is marked NOTIFIED, and
a later notice of a NOTIFIED run is not sent (the idempotency record expires; a re-driven event may come
days later). A publish that fails leaves the run open, and the reconciler sends its notice on its next pass;
so does one that another invocation was making at the same moment, should that one fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.exceptions import ClientError

from common import records
from common.config import StateSettings
from notify.messages import Notice

logger = Logger(child=True)

# Refused starts are counted where they happen (RunsFailedToStart, common/launch.py), not here.
METRIC_OF_OUTCOME = {"succeeded": "RunsSucceeded", "failed": "RunsFailed"}


def idempotent_publisher(
    *, state: StateSettings, sns: Any, topic_arn: str, table: Any, metrics: Metrics
) -> tuple[Callable[[Notice], dict[str, str]], IdempotencyConfig]:
    """`publish(notice)` to the run-reports topic, once per notice key, and its config for
    `register_lambda_context`."""
    persistence, config = state.idempotency(key="key")

    @idempotent_function(
        data_keyword_argument="notice", persistence_store=persistence, config=config, key_prefix="notify"
    )
    def publish_once(notice: Notice) -> dict[str, str]:
        response = sns.publish(TopicArn=topic_arn, Subject=notice.subject, Message=notice.message)
        if notice.outcome in METRIC_OF_OUTCOME:
            metrics.add_metric(name=METRIC_OF_OUTCOME[notice.outcome], unit=MetricUnit.Count, value=1)
        if notice.images_featurized:
            metrics.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=notice.images_featurized)
        return {"message_id": response["MessageId"], "key": notice.key}

    def publish(notice: Notice) -> dict[str, str]:
        run = records.get_run(table, notice.run_id) if notice.run_id else None
        if run is not None and records.NOTIFIED in run:  # e.g. a re-driven event, after the record expired
            logger.info("run already notified", extra={"key": notice.key})
            return {"message_id": "", "key": notice.key}
        try:
            sent = publish_once(notice=notice)
        except IdempotencyAlreadyInProgressError:  # the same notice, from another event at the same moment
            logger.info("notice being published by another invocation", extra={"key": notice.key})
            return {"message_id": "", "key": notice.key}
        if notice.run_id:
            try:
                records.mark_run(table, notice.run_id, records.NOTIFIED)
            except ClientError as error:  # no record: a job run this service did not start
                if error.response["Error"]["Code"] != records.CONDITION_FAILED:
                    raise
        return sent

    return publish, config
