"""Re-drive the stack's dead-letter queues, once the cause of their messages is fixed.

    python packaging/redrive.py [--stack-name image-featurizer] [--dry-run]

- The uploads dead-letter queue holds upload events the uploads function failed on five times: they go back
  to the uploads queue (as SQS's own "start DLQ redrive" would), and the debounce records them again.
- The events dead-letter queue holds EventBridge events its rules could not deliver, and events the
  asynchronously invoked functions failed on three times. Each goes where its rule sends it: an inbox upload
  to the uploads queue, a run flag to the notify function, an EMR job-run state change to both the run-ended
  and the notify function (both are idempotent: a second delivery changes nothing). A scheduled tick is
  dropped: the next tick and the reconciler do its work.
A message is deleted only once it is delivered; one its function fails on again stays, and is reported.
Exit status 0 when both queues are empty afterwards, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Logical ids in template.yaml.
UPLOADS_QUEUE, UPLOADS_DLQ, EVENTS_DLQ = "UploadsQueue", "UploadsDeadLetterQueue", "EventsDeadLetterQueue"
NOTIFY, RUN_ENDED = "NotifyFunction", "RunEndedFunction"
QUEUE = "queue"  # a target that is the uploads queue, not a function


@dataclass
class Outcome:
    delivered: int = 0
    dropped: int = 0
    failed: list[str] = field(default_factory=list)


def targets_of(event: dict[str, Any]) -> list[str]:
    """Where the template's rules send an event (QUEUE or function logical ids); [] for a dropped tick."""
    kind = event.get("detail-type")
    if kind == "Object Created":
        key = str(event.get("detail", {}).get("object", {}).get("key", ""))
        return [QUEUE] if key.startswith("inbox/") else [NOTIFY]
    if kind == "EMR Serverless Job Run State Change":
        return [RUN_ENDED, NOTIFY]
    if kind == "Scheduled Event":
        return []
    raise ValueError(f"not an event this stack's rules deliver (detail-type {kind!r})")


def messages(sqs: Any, queue_url: str) -> Iterator[dict[str, Any]]:
    """Every message of the queue, each received once (hidden for the run's duration)."""
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=900, WaitTimeSeconds=1
    ).get("Messages", []):
        yield from batch


def redrive(
    sqs: Any, invoke: Callable[[str, str], str | None], queues: dict[str, str], *, dry_run: bool = False
) -> dict[str, Outcome]:
    """Re-drive both dead-letter queues. ``invoke(function_logical_id, payload)`` returns the function's
    error, or None; ``queues`` maps the queues' logical ids to their URLs."""
    outcomes = {UPLOADS_DLQ: Outcome(), EVENTS_DLQ: Outcome()}
    kept: list[tuple[str, str]] = []  # (queue URL, receipt handle) of what stays, visible again at the end
    for message in messages(sqs, queues[UPLOADS_DLQ]):
        if dry_run:
            kept.append((queues[UPLOADS_DLQ], message["ReceiptHandle"]))
        else:
            sqs.send_message(QueueUrl=queues[UPLOADS_QUEUE], MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=queues[UPLOADS_DLQ], ReceiptHandle=message["ReceiptHandle"])
        outcomes[UPLOADS_DLQ].delivered += 1
    for message in messages(sqs, queues[EVENTS_DLQ]):
        outcome, handle = outcomes[EVENTS_DLQ], message["ReceiptHandle"]
        try:
            targets = targets_of(json.loads(message["Body"]))
        except (ValueError, AttributeError) as error:
            outcome.failed.append(f"message {message['MessageId']}: {error}")
            kept.append((queues[EVENTS_DLQ], handle))
            continue
        if dry_run:
            kept.append((queues[EVENTS_DLQ], handle))
        else:
            errors = [_deliver(sqs, invoke, queues, target, message["Body"]) for target in targets]
            if any(errors):
                outcome.failed += [f"message {message['MessageId']}: {e}" for e in errors if e]
                kept.append((queues[EVENTS_DLQ], handle))
                continue
            sqs.delete_message(QueueUrl=queues[EVENTS_DLQ], ReceiptHandle=handle)
        if targets:
            outcome.delivered += 1
        else:
            outcome.dropped += 1
    for url, handle in kept:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return outcomes


def _deliver(
    sqs: Any, invoke: Callable[[str, str], str | None], queues: dict[str, str], target: str, body: str
) -> str | None:
    if target == QUEUE:
        sqs.send_message(QueueUrl=queues[UPLOADS_QUEUE], MessageBody=body)
        return None
    error = invoke(target, body)
    return f"{target} failed again: {error}" if error else None


def stack_resources(cloudformation: Any, stack: str) -> dict[str, str]:
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    return {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for page in pages
        for resource in page["StackResourceSummaries"]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name", default="image-featurizer")
    parser.add_argument("--region")
    parser.add_argument("--dry-run", action="store_true", help="say what would be re-driven, change nothing")
    args = parser.parse_args(argv)

    import boto3  # an operator's tool: boto3 comes with the project's environment

    session = boto3.Session(region_name=args.region)
    resources = stack_resources(session.client("cloudformation"), args.stack_name)
    lambda_client = session.client("lambda")

    def invoke(function: str, payload: str) -> str | None:
        response = lambda_client.invoke(FunctionName=resources[function], Payload=payload.encode())
        return response["Payload"].read().decode() if response.get("FunctionError") else None

    # For SQS queues, CloudFormation's physical id is the queue URL.
    queues = {name: resources[name] for name in (UPLOADS_QUEUE, UPLOADS_DLQ, EVENTS_DLQ)}
    outcomes = redrive(session.client("sqs"), invoke, queues, dry_run=args.dry_run)
    verb = "would re-drive" if args.dry_run else "re-drove"
    for queue, outcome in outcomes.items():
        print(f"{queue}: {verb} {outcome.delivered}, dropped {outcome.dropped} scheduled ticks")
        for failure in outcome.failed:
            print(f"  kept: {failure}")
    return 1 if any(outcome.failed for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
