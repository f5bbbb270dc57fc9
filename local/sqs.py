"""moto's SQS (5.2.5) at the message rates of a real drop: the same answers, without its work per message
that grows steeply with the queue (docs/local-stack.md, "A realistic drop").

moto reads the clock through slow datetime arithmetic, recounts every queued message for each message sent
or received, and scans the queue twice for each message deleted. ``install`` gives it ``time.time()``,
counts that read the clock once, a retention check that reads only its attribute, and a DeleteMessageBatch
that scans the queue once (holding the lock SendMessage holds, so a message sent meanwhile is not dropped).

The event source mapping reads its queue from inside the service, as Lambda's pollers do: ``receive`` and
``delete`` call this process's moto backend, not its HTTP API, so a drain does not queue behind the
uploads' PUTs for every 10 messages.
"""

from __future__ import annotations

import time
from typing import Any

from moto.sqs import models

from local.template import ACCOUNT, REGION

_moto_delete_message_batch = models.SQSBackend.delete_message_batch


def _now_millis() -> float:
    return time.time() * 1000.0


def _messages(queue: Any) -> list[Any]:
    """Visible and not delayed (moto's ``Queue.messages``)."""
    now = _now_millis()
    return [m for m in queue._messages if now > m.visible_at and now >= m.delayed_until]


def _not_visible(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if now <= m.visible_at)


def _delayed(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    retention: int = backend.get_queue(queue_name).message_retention_period
    return bool(message.sent_timestamp / 1000 + retention > time.time())


def _delete_message_batch(
    backend: Any, queue_name: str, receipts: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, str]]]:
    """Delete the batch's messages in one scan; handles it did not find are moto's to answer (an already
    deleted one succeeds, an unknown one fails with ReceiptHandleIsInvalid)."""
    queue = backend.get_queue(queue_name)
    handles = {r["ReceiptHandle"] for r in receipts} - queue.deleted_messages
    with queue._messages_lock:
        kept = []
        for message in queue._messages:
            had = message.all_receipt_handles
            if handles.isdisjoint(had):
                kept.append(message)
                continue
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(had)
        queue._messages = kept
    found = handles & queue.deleted_messages
    rest = [r for r in receipts if r["ReceiptHandle"] not in found]
    success, failed = _moto_delete_message_batch(backend, queue_name, rest) if rest else ([], [])
    return [r["Id"] for r in receipts if r["ReceiptHandle"] in found] + success, failed


def _queue_name(queue_url: str) -> str:
    return queue_url.rsplit("/", 1)[-1]


def receive(queue_url: str, count: int, wait_seconds: int) -> list[Any]:
    """Up to ``count`` messages, made invisible for the queue's visibility timeout (moto's ``Message``s)."""
    backend = models.sqs_backends[ACCOUNT][REGION]
    name = _queue_name(queue_url)
    queue = backend.get_queue(name)
    with queue._messages_lock:  # moto's receive is not thread-safe (its waits release the lock)
        messages: list[Any] = backend.receive_message(name, count, wait_seconds, queue.visibility_timeout)
    return messages


def delete(queue_url: str, receipt_handles: list[str]) -> None:
    backend = models.sqs_backends[ACCOUNT][REGION]
    entries = [{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(receipt_handles)]
    if entries:
        backend.delete_message_batch(_queue_name(queue_url), entries)


def lambda_record(message: Any, queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event Lambda builds from a received message."""
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.approximate_receive_count),
            "SentTimestamp": str(message.sent_timestamp),
            "SenderId": message.sender_id,
            "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
        },
        "messageAttributes": {},  # EventBridge's SQS targets send none
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


PATCHES: list[tuple[Any, str, Any]] = [
    (models, "unix_time", time.time),
    (models, "unix_time_millis", _now_millis),
    (models.Queue, "messages", property(_messages)),
    (models.Queue, "approximate_number_of_messages", property(lambda queue: len(_messages(queue)))),
    (models.Queue, "approximate_number_of_messages_not_visible", property(_not_visible)),
    (models.Queue, "approximate_number_of_messages_delayed", property(_delayed)),
    (models.SQSBackend, "is_message_valid_based_on_retention_period", _within_retention),
    (models.SQSBackend, "delete_message_batch", _delete_message_batch),
]


def install() -> None:
    """Patch moto's SQS in this process (the one that runs the moto server)."""
    for owner, name, value in PATCHES:
        setattr(owner, name, value)
