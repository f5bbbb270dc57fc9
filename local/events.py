"""Event delivery as AWS does it, between the local services and the functions.

- **SQS event source mapping** (UploadsEventSource): batches of up to BatchSize messages from the uploads
  queue, gathered until the batch is full or the batching window has passed, as one SQS event; one poller
  per execution environment, ScalingConfig.MaximumConcurrency of them, so that many batches are in the
  function at once; the pollers read moto's queue from inside the service (local/sqs.py). With
  ReportBatchItemFailures only the messages the handler did not report are deleted, the others come back
  after the visibility timeout.
- **Asynchronous invocation** of EventBridge rule targets: moto's EventBridge matches the rules (patterns from
  template.yaml) and sends each event to one queue per function; each message is one invocation, retried
  twice on error (Lambda's default), then sent to the events dead-letter queue.
- **Schedules**: a "Scheduled Event" to the function every ``period`` seconds.
- **SNS**: the topic's messages arrive in a subscribed queue and are handed to ``on_message``.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local import sqs
from local.lambdas import FunctionError, LocalFunction
from local.template import ACCOUNT, REGION

logger = logging.getLogger(__name__)
ASYNC_ATTEMPTS = 3  # one invocation and Lambda's two retries
RETRY_DELAY_SECONDS = 2
GATHER_PAUSE_SECONDS = 0.2  # an event source mapping filling a batch looks at an empty queue again after this


def scheduled_event(at: float, rule: str) -> dict[str, Any]:
    """An EventBridge "Scheduled Event", as a Schedule rule delivers it to its function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


class Dispatcher:
    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def _spawn(self, name: str, loop: Callable[[], None]) -> None:
        def guarded() -> None:
            while not self.stopping.is_set():
                try:
                    loop()
                except Exception:
                    if not self.stopping.is_set():
                        logger.exception("%s failed; going on", name)
                        time.sleep(1)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _receive(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        return messages

    def _delete(self, queue_url: str, message: dict[str, Any]) -> None:
        self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def event_source_mapping(
        self,
        queue_url: str,
        queue_arn: str,
        environments: list[LocalFunction],
        batch_size: int,
        window_seconds: float,
    ) -> None:
        """One poller per execution environment of the function: at most ``len(environments)`` batches in
        the function at once (the mapping's ``MaximumConcurrency``)."""
        for index, function in enumerate(environments):
            batches = functools.partial(
                self._deliver_batch, queue_url, queue_arn, function, batch_size, window_seconds
            )
            self._spawn(f"esm-{function.name}-{index}", batches)

    def _deliver_batch(
        self, queue_url: str, queue_arn: str, function: LocalFunction, batch_size: int, window_seconds: float
    ) -> None:
        batch = sqs.receive(queue_url, batch_size, wait_seconds=1)
        if not batch:
            return
        deadline = time.monotonic() + window_seconds
        while len(batch) < batch_size and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = sqs.receive(queue_url, batch_size - len(batch), wait_seconds=0)
            if not more:
                self.stopping.wait(min(left, GATHER_PAUSE_SECONDS))
            batch += more
        event = {"Records": [sqs.lambda_record(m, queue_arn) for m in batch]}
        try:
            result = function.invoke(event)
        except FunctionError as error:
            logger.warning(
                "%s failed on a batch of %d: %s (retried after the visibility timeout)",
                function.name,
                len(batch),
                error,
            )
            return
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
        sqs.delete(queue_url, [m.receipt_handle for m in batch if m.id not in failed])
        logger.info(
            "%s <- SQS batch of %d messages (%d reported failed)", function.name, len(batch), len(failed)
        )

    def asynchronous(self, queue_url: str, function: LocalFunction, dead_letter_url: str) -> None:
        def poll() -> None:
            for message in self._receive(queue_url):
                event = json.loads(message["Body"])
                attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                try:
                    result = function.invoke(event)
                except FunctionError as error:
                    if attempt < ASYNC_ATTEMPTS:
                        logger.warning("%s failed (attempt %d, retrying): %s", function.name, attempt, error)
                        self.sqs.change_message_visibility(
                            QueueUrl=queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=RETRY_DELAY_SECONDS,
                        )
                        continue
                    logger.error(
                        "%s failed %d times, event to the dead-letter queue: %s",
                        function.name,
                        attempt,
                        error,
                    )
                    self.sqs.send_message(QueueUrl=dead_letter_url, MessageBody=json.dumps(event))
                else:
                    logger.info(
                        "%s <- %s: %s", function.name, event.get("detail-type"), json.dumps(result)[:200]
                    )
                self._delete(queue_url, message)

        self._spawn(f"async-{function.name}", poll)

    def schedule(self, function: LocalFunction, period_seconds: float) -> None:
        def tick() -> None:
            if self.stopping.wait(period_seconds):
                return
            try:
                result = function.invoke(scheduled_event(time.time(), f"featurizer-{function.name}Schedule"))
            except FunctionError as error:
                logger.warning("%s (schedule) failed: %s", function.name, error)  # no retry: the next tick
                return
            if result and (result.get("started") or result.get("errors")):
                logger.info("%s <- Scheduled Event: %s", function.name, json.dumps(result))

        self._spawn(f"schedule-{function.name}", tick)

    def subscription(self, queue_url: str, on_message: Callable[[str, str], None]) -> None:
        def poll() -> None:
            for message in self._receive(queue_url):
                envelope = json.loads(message["Body"])
                on_message(envelope.get("Subject", ""), envelope["Message"])
                self._delete(queue_url, message)

        self._spawn("sns-subscription", poll)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)
