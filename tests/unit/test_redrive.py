"""packaging/redrive.py against moto's SQS: each dead letter goes where its rule sends it, and only a
delivered one is deleted."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.paths import EVENTS_DIR, ROOT

spec = importlib.util.spec_from_file_location("redrive", ROOT / "packaging" / "redrive.py")
redrive = sys.modules["redrive"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(redrive)


def event(name: str, **changes: Any) -> str:
    loaded = json.loads((EVENTS_DIR / name).read_text())
    if "key" in changes:
        loaded["detail"]["object"]["key"] = changes["key"]
    return json.dumps(loaded)


def drain(sqs: Any, url: str) -> list[str]:
    return [m["Body"] for m in redrive.messages(sqs, url)]


@mock_aws
def test_dead_letters_go_back_where_their_rules_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs")
    queues = {
        name: sqs.create_queue(QueueName=name)["QueueUrl"]
        for name in ("UploadsQueue", "UploadsDeadLetterQueue", "EventsDeadLetterQueue")
    }
    upload = event("sqs_eventbridge_s3_object_created.json")
    sqs.send_message(QueueUrl=queues["UploadsDeadLetterQueue"], MessageBody=upload)
    inbox_event = event("eventbridge_s3_object_created.json", key="inbox/flowers/a.jpg")
    flag_event = event("eventbridge_s3_object_created.json", key="runs/flowers/r1/_COMPLETED.json")
    ended = event("emr_job_run_state_change_failed.json")
    tick = event("eventbridge_scheduled_event.json")
    for body in (inbox_event, flag_event, ended, tick, '{"detail-type": "Something Else"}'):
        sqs.send_message(QueueUrl=queues["EventsDeadLetterQueue"], MessageBody=body)
    invoked: list[tuple[str, str]] = []

    def invoke(function: str, payload: str) -> str | None:
        invoked.append((function, payload))
        return '{"errorMessage": "still broken"}' if function == "RunEndedFunction" else None

    dry = redrive.redrive(sqs, invoke, queues, dry_run=True)
    assert (dry["UploadsDeadLetterQueue"].delivered, dry["EventsDeadLetterQueue"].delivered) == (1, 3)
    assert invoked == [] and drain(sqs, queues["UploadsQueue"]) == []

    outcomes = redrive.redrive(sqs, invoke, queues)
    assert drain(sqs, queues["UploadsQueue"]) == [upload, inbox_event]
    assert invoked == [("NotifyFunction", flag_event), ("RunEndedFunction", ended), ("NotifyFunction", ended)]
    events_outcome = outcomes["EventsDeadLetterQueue"]
    assert (events_outcome.delivered, events_outcome.dropped) == (2, 1)
    assert len(events_outcome.failed) == 2
    assert "RunEndedFunction failed again" in events_outcome.failed[0]
    assert "not an event this stack's rules deliver" in events_outcome.failed[1]
    assert drain(sqs, queues["UploadsDeadLetterQueue"]) == []
    assert sorted(drain(sqs, queues["EventsDeadLetterQueue"])) == sorted(
        [ended, '{"detail-type": "Something Else"}']
    ), "only what was delivered (or dropped) is deleted"
