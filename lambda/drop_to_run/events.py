"""Object-created events, as the uploads queue delivers them, turned into ``Upload`` values.

The queue receives EventBridge "Object Created" events (the template's wiring). It also accepts S3 event
notification records (``{"Records": [...]}``, as S3 sends them when a bucket notification targets the queue
directly), whose object keys are URL-encoded ("red flower.jpg" arrives as "red+flower.jpg"): those are
decoded with ``unquote_plus``. EventBridge keys are used as delivered. Dataset names are restricted to
``[A-Za-z0-9._-]``, which both encodings leave unchanged, so the dataset is found the same way either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, S3Model
from common.runs import INBOX_PREFIX, START_MARKER, is_valid_dataset

from drop_to_run.debounce import Upload


class UnrecognisedMessageError(ValueError):
    """A queue message that is neither an EventBridge S3 event nor S3 notification records."""


@dataclass(frozen=True)
class Ignored:
    key: str
    reason: str


def upload_from_key(key: str, time: float) -> Upload | Ignored:
    """``inbox/<dataset>/<path>`` -> Upload; anything else is ignored with a reason."""
    if not key.startswith(INBOX_PREFIX):
        return Ignored(key, "not under inbox/")
    dataset, _, rest = key[len(INBOX_PREFIX) :].partition("/")
    if not rest:
        return Ignored(key, "object directly under inbox/ (expected inbox/<dataset>/<file>)")
    if rest.endswith("/"):
        return Ignored(key, "folder placeholder")
    if not is_valid_dataset(dataset):
        return Ignored(key, f"dataset name {dataset!r} is not [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}")
    return Upload(dataset=dataset, key=key, time=time, is_start_marker=rest == START_MARKER)


def uploads_from_message(body: str) -> list[Upload | Ignored]:
    """All uploads described by one SQS message body."""
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as error:
        raise UnrecognisedMessageError(f"message body is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise UnrecognisedMessageError("message body is not a JSON object")
    if "detail-type" in payload:
        event = S3EventNotificationEventBridgeModel.model_validate(payload)
        if event.detail_type != "Object Created":
            return [Ignored(event.detail.object.key, f"detail-type {event.detail_type!r}")]
        return [upload_from_key(event.detail.object.key, event.time.timestamp())]
    if "Records" in payload:
        notification = S3Model.model_validate(payload)
        results: list[Upload | Ignored] = []
        for record in notification.Records:
            key = unquote_plus(record.s3.object.key) if record.s3.object else ""
            if not record.eventName.startswith("ObjectCreated:"):
                results.append(Ignored(key, f"event {record.eventName}"))
                continue
            results.append(upload_from_key(key, record.eventTime.timestamp()))
        return results
    if payload.get("Event") == "s3:TestEvent":
        return []
    raise UnrecognisedMessageError("message is neither an EventBridge S3 event nor S3 notification records")
