"""Messages of the uploads queue, as typed models, turned into ``Upload`` values of their drop unit.

The queue receives EventBridge "Object Created" events (the template's wiring). It also accepts S3 event
notification records (``{"Records": [...]}``, as S3 sends them when a bucket notification targets the queue
directly), whose object keys are URL-encoded ("red flower.jpg" arrives as "red+flower.jpg"): those are
decoded with ``unquote_plus``. EventBridge keys are used as delivered. Dataset names are restricted to
``[A-Za-z0-9._-]``, which both encodings leave unchanged, so the dataset is found the same way either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import (
    S3EventNotificationEventBridgeModel,
    S3Model,
    SqsRecordModel,
)
from pydantic import BaseModel, Json

from common.drop_units import NotADropUnit, unit_of_path
from common.runs import DATASET_PATTERN, INBOX_PREFIX, SELF_TEST_PREFIX, START_MARKER, is_valid_dataset
from drop_to_run.debounce import Upload


class S3TestEventModel(BaseModel):
    """The message S3 sends once to a queue it has just been configured to notify."""

    Event: Literal["s3:TestEvent"]


UploadsMessage = S3EventNotificationEventBridgeModel | S3Model | S3TestEventModel


class UploadsQueueRecord(SqsRecordModel):
    """An uploads-queue record whose body is one of the messages above (any other body fails it)."""

    body: Json[UploadsMessage]  # type: ignore[assignment]


@dataclass(frozen=True)
class Ignored:
    key: str
    reason: str


def upload_from_key(key: str, time: float) -> Upload | Ignored:
    """``inbox/<dataset>/<path>`` -> Upload; anything else is ignored with a reason."""
    if not key.startswith(INBOX_PREFIX):
        return Ignored(key, f"not under {INBOX_PREFIX}")
    dataset, _, rest = key[len(INBOX_PREFIX) :].partition("/")
    if not rest:
        return Ignored(key, f"object directly under {INBOX_PREFIX} (expected {INBOX_PREFIX}<dataset>/<file>)")
    if rest.endswith("/"):
        return Ignored(key, "folder placeholder")
    if not is_valid_dataset(dataset):
        return Ignored(key, f"dataset name {dataset!r} does not match {DATASET_PATTERN.pattern}")
    if dataset.startswith(SELF_TEST_PREFIX):
        return Ignored(
            key,
            f"dataset names that start with {SELF_TEST_PREFIX!r} are the self-test's (packaging/selftest.py "
            "starts their runs through the API): rename the folder to start a run from a drop",
        )
    try:
        unit, path = unit_of_path(dataset, rest)
    except NotADropUnit as error:
        return Ignored(key, str(error))
    return Upload(dataset=unit.name, key=key, time=time, is_start_marker=path == START_MARKER)


def uploads_in(message: UploadsMessage) -> list[Upload | Ignored]:
    """All uploads one queue message describes."""
    if isinstance(message, S3TestEventModel):
        return []
    if isinstance(message, S3EventNotificationEventBridgeModel):
        if message.detail_type != "Object Created":
            return [Ignored(message.detail.object.key, f"detail-type {message.detail_type!r}")]
        return [upload_from_key(message.detail.object.key, message.time.timestamp())]
    results: list[Upload | Ignored] = []
    for record in message.Records:
        key = unquote_plus(record.s3.object.key) if record.s3.object else ""
        if not record.eventName.startswith("ObjectCreated:"):
            results.append(Ignored(key, f"event {record.eventName}"))
            continue
        results.append(upload_from_key(key, record.eventTime.timestamp()))
    return results
