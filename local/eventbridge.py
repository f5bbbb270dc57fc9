"""Events onto moto's EventBridge default bus in the shape AWS sends them: S3 notifications and EMR job runs.

moto 5.2.5 already sends an event to the default bus for buckets with EventBridge notifications enabled, but
with a fixed event id shared by every event, ``eTag`` instead of ``etag``, a constant sequencer and
``reason: ObjectCreated``; the handlers parse these events with Powertools' models and deduplicate on them,
so the stack replaces that one function with one that builds the documented event
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html). The local EMR publishes the same
way: moto's PutEvents API rebuilds each event through its input transformer, which drops ``account``.
Routing stays moto's: every rule of the bus matches the event against its pattern and sends it to its
targets (the SQS target writes ``time``, given here in epoch seconds, as ISO 8601 like EventBridge).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import Any

from moto.events.models import events_backends
from moto.s3 import notifications

from local.template import ACCOUNT, REGION

logger = logging.getLogger(__name__)

_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "PostObject",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}
_sequence = itertools.count(1)


def object_event(account_id: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any]:
    """The EventBridge event S3 sends for ``event_name`` on ``key``."""
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": {"key": key.name, "sequencer": f"{time.time_ns():016X}{next(_sequence):04X}"},
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account_id,
        "source-ip-address": "127.0.0.1",
        "reason": _REASONS.get(event_name, event_name.rsplit(":", 1)[-1]),
    }
    if "ObjectCreated" in event_name:
        detail["object"] |= {"size": key.size, "etag": key.etag.strip('"')}
    else:
        detail["deletion-type"] = "Permanently Deleted"
    if key.version_id and key.version_id != "null":
        detail["object"]["version-id"] = key.version_id
    resources = [f"arn:aws:s3:::{bucket.name}"]
    return event(
        account_id, bucket.region_name, "aws.s3", notifications._detail_type(event_name), resources, detail
    )


def event(
    account_id: str, region: str, source: str, detail_type: str, resources: list[str], detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": time.time(),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def job_run_state_change(detail: dict[str, Any]) -> dict[str, Any]:
    """The "EMR Serverless Job Run State Change" event EMR Serverless sends for ``detail``."""
    return event(ACCOUNT, REGION, "aws.emr-serverless", "EMR Serverless Job Run State Change", [], detail)


def publish(message: dict[str, Any]) -> None:
    """Send ``message`` to the targets of every matching rule on the default bus."""
    backend = events_backends[message["account"]][message["region"]]
    for bus in backend.event_buses.values():
        for rule in bus.rules.values():
            rule.send_to_targets(dict(message), transform_input=False)


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    try:
        publish(object_event(account_id, bucket, event_name, key))
    except Exception:  # asynchronous in AWS: a failed notification never fails the PUT
        logger.exception("S3 EventBridge notification failed for %s/%s", bucket.name, key.name)


def install() -> None:
    """Route moto's S3 EventBridge notifications through ``object_event``."""
    notifications._send_event_bridge_message = _send_event_bridge_message
