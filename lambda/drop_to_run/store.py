"""DatasetState in DynamoDB: one item per dataset, written with optimistic locking on ``version``.

Items that need the periodic sweep carry ``sweep = "DUE"`` and ``due_at`` (epoch seconds); the sparse
global secondary index ``due-index`` (keys only) on those two attributes lets the sweep query only the
datasets that are due (open runs share it under ``sweep = "RUN"``: common/records.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from common import records
from common.errors import StateContentionError
from common.items import from_item, to_item
from drop_to_run.debounce import DatasetState, Phase, next_check_at

DUE = "DUE"
MAX_ATTEMPTS = 8
STATE_TTL_SECONDS = 400 * 24 * 3600  # forget datasets with no activity for a little over a year

_FIELDS = {f.name: f for f in dataclasses.fields(DatasetState)}


def _key(dataset: str) -> dict[str, str]:
    return {"pk": f"dataset#{dataset}"}


def _state_of(dataset: str, item: dict[str, Any] | None) -> DatasetState:
    if not item:
        return DatasetState(dataset=dataset)
    values = {name: from_item(item[name]) for name in _FIELDS if name in item and name != "dataset"}
    values["phase"] = Phase(values.get("phase", Phase.IDLE))
    values["history"] = tuple(values.get("history", ()))
    return DatasetState(dataset=dataset, **values)


def _item_of(state: DatasetState, quiet_seconds: int) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": f"dataset#{state.dataset}", "dataset": state.dataset}
    for name in _FIELDS:
        value = getattr(state, name)
        if value is not None and name != "dataset":
            item[name] = to_item(value.value if isinstance(value, Phase) else value)
    due = next_check_at(state, quiet_seconds)
    if due is not None:
        item["sweep"] = DUE
        item["due_at"] = to_item(float(due))
    item["expiration"] = int(time.time()) + STATE_TTL_SECONDS
    return item


class DatasetStore:
    def __init__(self, table: Any, quiet_seconds: int) -> None:
        self.table = table
        self.quiet_seconds = quiet_seconds

    def load(self, dataset: str) -> DatasetState:
        response = self.table.get_item(Key=_key(dataset), ConsistentRead=True)
        return _state_of(dataset, response.get("Item"))

    def save(self, state: DatasetState, expected_version: int) -> DatasetState:
        saved = dataclasses.replace(state, version=expected_version + 1)
        condition = Attr("pk").not_exists() if expected_version == 0 else Attr("version").eq(expected_version)
        self.table.put_item(Item=_item_of(saved, self.quiet_seconds), ConditionExpression=condition)
        return saved

    def mutate(
        self, dataset: str, change: Callable[[DatasetState], DatasetState]
    ) -> tuple[DatasetState, DatasetState]:
        """Apply ``change`` to the stored state, retrying on concurrent writes. Returns (before, after)."""
        for _ in range(MAX_ATTEMPTS):
            before = self.load(dataset)
            after = change(before)
            if after == before:
                return before, before
            try:
                return before, self.save(after, before.version)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise StateContentionError(f"dataset {dataset}: state changed concurrently {MAX_ATTEMPTS} times")

    def due(self, now: float) -> Iterator[str]:
        """Datasets whose next check time has come."""
        return (key.removeprefix("dataset#") for key in records.due_keys(self.table, DUE, now))
