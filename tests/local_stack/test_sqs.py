"""The local stack's SQS (local/sqs.py) and its event source mapping (local/events.py): moto's answers, at
the rates of a real drop, delivered in batches as Lambda delivers them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models

from local import sqs
from local.events import Dispatcher
from local.template import REGION
from tests.paths import EVENTS_DIR


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """local/sqs.py's patches, undone after the test (the other tests run moto as it comes)."""
    for owner, name, value in sqs.PATCHES:
        monkeypatch.setattr(owner, name, value)


def counts(client: Any, url: str) -> dict[str, str]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    names.append("ApproximateNumberOfMessagesDelayed")
    return dict(client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"])


def scenario(client: Any) -> list[Any]:
    """Counts, receives and batch deletes (a handle deleted twice, one that was never issued)."""
    url = client.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    for i in range(6):
        client.send_message(QueueUrl=url, MessageBody=f"m{i}", DelaySeconds=60 if i < 2 else 0)
    seen = [counts(client, url)]
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=30)["Messages"]
    seen.append(counts(client, url))
    handles = [m["ReceiptHandle"] for m in received]
    entries = [{"Id": "a", "ReceiptHandle": handles[0]}, {"Id": "b", "ReceiptHandle": handles[1]}]
    seen.append(client.delete_message_batch(QueueUrl=url, Entries=entries)["Successful"])
    entries = [{"Id": "again", "ReceiptHandle": handles[0]}, {"Id": "c", "ReceiptHandle": handles[2]}]
    entries.append({"Id": "bogus", "ReceiptHandle": handles[2][:-4] + "AAAA"})
    response = client.delete_message_batch(QueueUrl=url, Entries=entries)
    seen += [sorted(e["Id"] for e in response["Successful"]), [e["Id"] for e in response.get("Failed", [])]]
    seen.append(counts(client, url))
    seen.append(len(client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])))
    return seen


def test_the_patched_queue_answers_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        expected = scenario(boto3.client("sqs", region_name=REGION))
    for owner, name, value in sqs.PATCHES:
        monkeypatch.setattr(owner, name, value)
    with mock_aws():
        assert scenario(boto3.client("sqs", region_name=REGION)) == expected
    assert expected[1] == {  # visible, in flight, delayed
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "3",
        "ApproximateNumberOfMessagesDelayed": "2",
    }
    assert expected[4] == ["bogus"]


def test_a_drain_costs_no_more_per_message_with_twenty_thousand_queued(aws: Any, patched: None) -> None:
    """moto as it comes reads the clock 40,000 times per message received from such a queue (minutes)."""
    url = aws.create_queue(QueueName="uploads")["QueueUrl"]
    queue = models.sqs_backends["123456789012"][REGION].get_queue("uploads")
    for i in range(20_000):
        message = models.Message(f"id-{i}", f"body {i}")
        message.mark_sent()
        queue.add_message(message)

    started = time.monotonic()
    for _ in range(5):
        batch = sqs.receive(url, 1000, wait_seconds=0)
        assert len(batch) == 1000
        sqs.delete(url, [m.receipt_handle for m in batch])
    assert counts(aws, url)["ApproximateNumberOfMessages"] == "15000"
    assert time.monotonic() - started < 10


def test_a_record_has_the_keys_lambda_gives_it(aws: Any, patched: None) -> None:
    real = json.loads((EVENTS_DIR / "sqs_eventbridge_s3_object_created.json").read_text())["Records"][0]
    url = aws.create_queue(QueueName="uploads")["QueueUrl"]
    aws.send_message(QueueUrl=url, MessageBody=real["body"])
    (message,) = sqs.receive(url, 10, wait_seconds=0)

    record = sqs.lambda_record(message, real["eventSourceARN"])

    assert set(record) == set(real)
    assert set(record["attributes"]) == set(real["attributes"])
    assert (record["body"], record["md5OfBody"]) == (real["body"], real["md5OfBody"])


class FakeFunction:
    """An execution environment that reports the first message of its first batch as failed."""

    name = "UploadsFunction"
    running = 0
    most_at_once = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        self.batches: list[int] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            FakeFunction.running += 1
            FakeFunction.most_at_once = max(FakeFunction.most_at_once, FakeFunction.running)
        time.sleep(0.3)
        with self.lock:
            FakeFunction.running -= 1
        self.batches.append(len(event["Records"]))
        failed = [{"itemIdentifier": event["Records"][0]["messageId"]}] if len(self.batches) == 1 else []
        return {"batchItemFailures": failed}


def test_the_mapping_runs_batches_in_every_environment_at_once_and_keeps_failed_messages(
    aws: Any, patched: None
) -> None:
    url = aws.create_queue(QueueName="uploads", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for start in range(0, 95, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(min(10, 95 - start))]
        aws.send_message_batch(QueueUrl=url, Entries=entries)
    environments = [FakeFunction(), FakeFunction()]
    dispatcher = Dispatcher(aws)

    dispatcher.event_source_mapping(url, "arn:aws:sqs:us-east-1:123456789012:uploads", environments, 20, 1.0)
    deadline = time.monotonic() + 30
    while sum(sum(f.batches) for f in environments) < 95 and time.monotonic() < deadline:
        time.sleep(0.1)
    dispatcher.stop()

    assert sum(sum(f.batches) for f in environments) == 95
    assert max(max(f.batches) for f in environments) == 20  # BatchSize
    assert all(f.batches for f in environments)
    assert FakeFunction.most_at_once == 2
    assert counts(aws, url)["ApproximateNumberOfMessagesNotVisible"] == "2"  # one reported by each
