"""Run records in the state table (one table, key ``pk``, TTL attribute ``expiration``).

Item kinds, by key prefix:
    run#<run_id>            what was started: dataset, input, output, options, then the EMR job run id;
                            while the run is *open* (its end not yet e-mailed, or its dataset not yet
                            released) it carries ``sweep = "RUN"`` and ``due_at``, its next reconciliation
    jobrun#<job_run_id>     the run id and dataset of an EMR job run (EMR events carry only the job run id)
    claim#<fingerprint>     the run id an API request was given (so a retried request reuses it)
    dataset#<unit>          drop-to-run debounce state of a dataset or prediction batch (drop_to_run/store.py)
    <prefix>#<hash>         Powertools idempotency records

A run is recorded before its job run is started (`put_run`), and its job run after (`record_job_run`, one
transaction with the index), so every job run this service starts has a record; common/tracking.py finds
the job run of a record whose link was lost. Open runs sit in the sparse ``due-index`` beside the datasets
due for the sweep; an API caller's open runs also sit in ``caller-index`` (attribute ``open_by``), which
counts a caller's runs in flight. Every run recorded since GET /runs sits in ``runs-index`` under the caller
that started it (``listed_by``: its ARN, or DROP_RUNS for a drop's), newest first by ``created_at``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from common.items import from_item, to_item
from common.plan import InputSize
from common.runs import RunSpec

RUN_RECORD_TTL_SECONDS = 400 * 24 * 3600  # a run's status stays queryable for a little over a year
CONDITION_FAILED = "ConditionalCheckFailedException"
DUE_INDEX = "due-index"
CALLER_INDEX = "caller-index"
RUNS_INDEX = "runs-index"
DROP_RUNS = "drop"  # the runs-index partition of runs a drop started (the others are their callers' ARNs)
# The attributes GET /runs lists (runs-index projects them, with job_run_id and start_error for the state).
LISTED = ("run_id", "dataset", "input", "trigger", "from_run", "predict_with")
PAGE_KEYS = ("pk", "listed_by", "created_at")  # where a page of runs-index ends: the table's key, the index's
OPEN_RUN = "RUN"  # the due-index partition of open runs (datasets use "DUE": drop_to_run/store.py)
# An open run is checked against EMR this long after it was recorded, then as often while it runs: a lost
# end event is made good within about this time (docs/control-plane.md, "Reconciliation").
RECONCILE_INTERVAL_SECONDS = 600
# What an open run waits for before it is closed: its end e-mailed, and (drop runs) its dataset released.
NOTIFIED, RELEASED = "notified_at", "released_at"


def _size_item(size: InputSize) -> dict[str, Any]:
    """The input's count as the plan took it (GET /runs compares the run's cost with that plan's)."""
    return {"images": size.images, "complete": size.complete, **({"bytes": size.bytes} if size.bytes else {})}


def input_size_of(run: dict[str, Any]) -> InputSize | None:
    """The count a run's record keeps, as put_run wrote it (None: not counted)."""
    size = run.get("input_size")
    if not size:
        return None
    counted_bytes = size.get("bytes")
    return InputSize(
        int(size["images"]), None if counted_bytes is None else int(counted_bytes), bool(size["complete"])
    )


def _run_key(run_id: str) -> dict[str, str]:
    return {"pk": f"run#{run_id}"}


def _expiration() -> int:
    return int(time.time()) + RUN_RECORD_TTL_SECONDS


def put_run(table: Any, run: RunSpec, *, application_id: str) -> None:
    """Record a run about to be started, open; a record already there (a retried start) is kept as it is."""
    now = time.time()
    try:
        table.put_item(
            Item={
                **_run_key(run.run_id),
                "run_id": run.run_id,
                "dataset": run.dataset,
                "input": run.input_uri,
                "output": f"{run.output_uri}{run.run_id}/",
                "options": to_item(run.options.model_dump(exclude_none=True)),
                "trigger": run.trigger,
                **({"from_run": run.from_run} if run.from_run else {}),
                **({"predict_with": run.predict_with} if run.predict_with else {}),
                **({"input_size": _size_item(run.input_size)} if run.input_size else {}),
                "requested_by": run.requested_by,
                "application_id": application_id,
                "created_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
                "expiration": _expiration(),
                "sweep": OPEN_RUN,
                "due_at": to_item(float(now + RECONCILE_INTERVAL_SECONDS)),
                **({"open_by": run.requested_by} if run.requested_by else {}),
                "listed_by": run.requested_by or DROP_RUNS,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != CONDITION_FAILED:
            raise


def record_job_run(table: Any, run_id: str, dataset: str, job_run_id: str, requested_by: str = "") -> None:
    """The started job run: its id on the run record and the job-run index entry, written as one. The run
    is (re)opened: a start retried after a refusal may find its record closed."""
    values: dict[str, Any] = {
        ":job_run_id": job_run_id,
        ":open": OPEN_RUN,
        ":due": to_item(float(time.time() + RECONCILE_INTERVAL_SECONDS)),
    }
    update = "SET job_run_id = :job_run_id, sweep = :open, due_at = :due"
    if requested_by:
        update, values[":by"] = f"{update}, open_by = :by", requested_by
    table.meta.client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table.name,
                    "Key": _run_key(run_id),
                    "UpdateExpression": f"{update} REMOVE start_error",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Put": {
                    "TableName": table.name,
                    "Item": {
                        "pk": f"jobrun#{job_run_id}",
                        "run_id": run_id,
                        "dataset": dataset,
                        "expiration": _expiration(),
                    },
                }
            },
        ]
    )


def record_start_error(table: Any, run_id: str, message: str) -> None:
    """Why EMR refused to start a recorded run (cleared once a retry starts it); a refused run is not in
    flight, so it no longer counts against its caller's cap."""
    table.update_item(
        Key=_run_key(run_id),
        UpdateExpression="SET start_error = :message REMOVE open_by",
        ExpressionAttributeValues={":message": message[:1000]},
    )


def mark_run(table: Any, run_id: str, step: str) -> None:
    """Note that a step of the run's end is done (NOTIFIED or RELEASED); close the run once none is left."""
    item = table.update_item(
        Key=_run_key(run_id),
        UpdateExpression=f"SET {step} = :now",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":now": int(time.time())},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    if "sweep" in item and is_done(item):
        close_run(table, run_id)


def is_done(run: dict[str, Any]) -> bool:
    """Whether every step of the run's end is marked: its e-mail, and (drop runs) its dataset's release."""
    return all(step in run for step in ([NOTIFIED] if run.get("trigger") == "api" else [NOTIFIED, RELEASED]))


def close_run(table: Any, run_id: str) -> None:
    """Nothing is left to do for the run: out of the reconciler's and the caller's in-flight indexes."""
    table.update_item(Key=_run_key(run_id), UpdateExpression="REMOVE sweep, due_at, open_by")


def reschedule_run(table: Any, run_id: str, at: float) -> bool:
    """Check an open run again at ``at`` (also one closed too early: it is opened again); False when
    there is no such run."""
    try:
        table.update_item(
            Key=_run_key(run_id),
            UpdateExpression="SET sweep = :open, due_at = :at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":open": OPEN_RUN, ":at": to_item(float(at))},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != CONDITION_FAILED:
            raise
        return False
    return True


def _pages(table: Any, **query: Any) -> Iterator[dict[str, Any]]:
    """Every page of a Query (the resource layer's Table has no paginator)."""
    while True:
        page: dict[str, Any] = table.query(**query)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def due_keys(table: Any, partition: str, now: float) -> Iterator[str]:
    """Keys of the items of a due-index partition (OPEN_RUN, or the sweep's datasets) due by ``now``."""
    pages = _pages(
        table,
        IndexName=DUE_INDEX,
        KeyConditionExpression=Key("sweep").eq(partition) & Key("due_at").lte(to_item(float(now))),
        ProjectionExpression="pk",
    )
    return (str(item["pk"]) for page in pages for item in page.get("Items", []))


def runs_due(table: Any, now: float) -> Iterator[str]:
    """Ids of the open runs whose next reconciliation time has come."""
    return (key.removeprefix("run#") for key in due_keys(table, OPEN_RUN, now))


def runs_in_flight(table: Any, caller: str) -> int:
    """How many of the caller's runs are open (the index is eventually consistent: a cap, not a count)."""
    pages = _pages(
        table, IndexName=CALLER_INDEX, KeyConditionExpression=Key("open_by").eq(caller), Select="COUNT"
    )
    return sum(int(page["Count"]) for page in pages)


def list_runs(
    table: Any, listed_by: str, limit: int, after: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to ``limit`` runs of a runs-index partition, newest first, from past ``after`` (the key the
    previous page ended at); and the key this page ends at, if more may follow."""
    query: dict[str, Any] = {
        "IndexName": RUNS_INDEX,
        "KeyConditionExpression": Key("listed_by").eq(listed_by),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if after is not None:
        query["ExclusiveStartKey"] = after
    page = table.query(**query)
    return [from_item(item) for item in page["Items"]], page.get("LastEvaluatedKey")


def get_run(table: Any, run_id: str) -> dict[str, Any] | None:
    item = table.get_item(Key=_run_key(run_id), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def get_run_of_job_run(table: Any, job_run_id: str) -> dict[str, Any] | None:
    item = table.get_item(Key={"pk": f"jobrun#{job_run_id}"}, ConsistentRead=True).get("Item")
    return from_item(item) if item else None


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
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise
        item = table.get_item(Key={"pk": f"claim#{fingerprint}"}, ConsistentRead=True).get("Item")
        if item and int(item["expiration"]) >= int(now):
            return str(item["run_id"])
    raise RuntimeError(f"could not claim a run id for request {fingerprint}")
