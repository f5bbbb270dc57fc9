"""Run records in the state table (one table, key ``pk``, TTL attribute ``expiration``).

Item kinds, by key prefix:
    run#<run_id>            what was started: dataset, input, output, options, EMR job run id
    jobrun#<job_run_id>     the run id and dataset of an EMR job run (EMR events carry only the job run id)
    claim#<fingerprint>     the run id an API request was given (so a retried request reuses it)
    dataset#<dataset>       drop-to-run debounce state (drop_to_run/store.py)
    <prefix>#<hash>         Powertools idempotency records
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from common.runs import RunSpec

RUN_RECORD_TTL_SECONDS = 400 * 24 * 3600  # a run's status stays queryable for a little over a year


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; turn them into int/float for JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def put_run(table: Any, run: RunSpec, *, job_run_id: str, application_id: str) -> None:
    expiration = int(time.time()) + RUN_RECORD_TTL_SECONDS
    table.put_item(
        Item={
            "pk": f"run#{run.run_id}",
            "run_id": run.run_id,
            "dataset": run.dataset,
            "input": run.input_uri,
            "output": f"{run.output_uri}{run.run_id}/",
            "options": json.loads(run.options.model_dump_json(exclude_none=True), parse_float=Decimal),
            "trigger": run.trigger,
            "requested_by": run.requested_by,
            "job_run_id": job_run_id,
            "application_id": application_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "expiration": expiration,
        }
    )
    table.put_item(
        Item={
            "pk": f"jobrun#{job_run_id}",
            "run_id": run.run_id,
            "dataset": run.dataset,
            "expiration": expiration,
        }
    )


def get_run(table: Any, run_id: str) -> dict[str, Any] | None:
    item = table.get_item(Key={"pk": f"run#{run_id}"}, ConsistentRead=True).get("Item")
    return _plain(item) if item else None


def get_run_of_job_run(table: Any, job_run_id: str) -> dict[str, Any] | None:
    item = table.get_item(Key={"pk": f"jobrun#{job_run_id}"}, ConsistentRead=True).get("Item")
    return _plain(item) if item else None


def claim_run_id(
    table: Any, fingerprint: str, mint: Callable[[], str], *, window_seconds: int, now: float | None = None
) -> str:
    """The run id for a request fingerprint: minted once, then reused for ``window_seconds``.

    A conditional put makes concurrent identical requests agree on one id; an expired claim (TTL deletion is
    lazy, so the expiration attribute is checked too) is replaced by a new one.
    """
    now = time.time() if now is None else now
    for _ in range(3):
        candidate = mint()
        try:
            table.put_item(
                Item={
                    "pk": f"claim#{fingerprint}",
                    "run_id": candidate,
                    "expiration": int(now + window_seconds),
                },
                ConditionExpression="attribute_not_exists(pk) OR expiration < :now",
                ExpressionAttributeValues={":now": int(now)},
            )
            return candidate
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        item = table.get_item(Key={"pk": f"claim#{fingerprint}"}, ConsistentRead=True).get("Item")
        if item and int(item["expiration"]) >= int(now):
            return str(item["run_id"])
    raise RuntimeError(f"could not claim a run id for request {fingerprint}")
