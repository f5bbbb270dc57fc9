"""POST /runs with "dry_run": the run's plan from the counted input, nothing started or recorded; a run that
would not fit is planned with what to raise, and refused (400) when asked for."""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from typing import Any

import pytest

from common.outputs import count_objects
from common.plan import Capacity, InputSize
from local.spark_submit import parse_parameters
from tests.unit.control_plane.test_api import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def items(local_aws: Any) -> int:
    return int(local_aws.client("dynamodb").scan(TableName=local_aws.table_name, Select="COUNT")["Count"])


def test_a_dry_run_answers_the_plan_and_starts_and_records_nothing(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    before = items(local_aws)
    body = {"input": inbox, "options": {"pca_k": 5}}

    status, planned, _ = call(
        handlers, events.api("POST", "/runs", json.dumps({**body, "dry_run": True})), context
    )

    assert status == 200, planned
    assert (planned["dry_run"], planned["dataset"], planned["input"]) == (True, dataset, inbox)
    assert (planned["images"], planned["bytes"], planned["counted"]) == (
        2,
        2 * 9,
        "all",
    )  # two 9-byte "images"
    assert planned["fits"] is True and planned["problems"] == []
    assert planned["executors"] == 1 and planned["executor"] == {"vcpu": 4, "memory_gb": 8, "disk_gb": 20}
    assert planned["timeout_minutes"] == 120
    assert set(planned["cost_usd"]) == {"x86_64", "arm64"}
    assert planned["prices"]["x86_64"]["vcpu_hour"] == 0.052624
    assert local_aws.job_runs(dataset) == [] and items(local_aws) == before

    # nothing the dry run left holds back the run itself
    status, created, _ = call(handlers, events.api("POST", "/runs", json.dumps(body)), context)
    assert status == 202, created
    job = local_aws.client("emr-serverless").get_job_run(
        applicationId=local_aws.application_id, jobRunId=created["jobRunId"]
    )["jobRun"]
    conf = parse_parameters(job["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]).conf
    assert conf["spark.dynamicAllocation.maxExecutors"] == "1"  # sized from the two objects counted
    assert conf["spark.emr-serverless.executor.disk"] == "20G"


@pytest.fixture
def no_room(handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's application capacity cut below one driver and one executor."""
    runs = importlib.import_module("api.app").runs
    monkeypatch.setattr(runs, "settings", replace(runs.settings, capacity=Capacity(6, 20, 1000)))


@pytest.mark.usefixtures("no_room")
def test_a_run_that_would_not_fit_is_planned_with_the_fix_and_refused_when_asked_for(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    problem = (
        "MaximumCapacity (6 vCPU, 20 GB, 1000 GB of disk) cannot hold the driver and one executor: raise "
        "MaximumCpu to at least 8 vCPU, MaximumMemory to at least 24 GB"
    )
    dry_run = json.dumps({"input": inbox, "dry_run": True})

    status, planned, _ = call(handlers, events.api("POST", "/runs", dry_run), context)
    assert (status, planned["fits"], planned["problems"]) == (200, False, [problem])

    status, refused, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    assert (status, refused["field"]) == (400, "input")
    assert refused["problem"] == f'{problem} ("dry_run": true gives the whole plan)'
    assert local_aws.job_runs(dataset) == []


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"dry_run": "yes"}, "dry_run", 'must be true or false, got "yes"'),
        ({"dry_run": True, "input": "s3://featurizer-data/inbox/nothing-here/"}, "input", "no objects under"),
    ],
)
def test_a_dry_run_is_checked_as_a_run_is(
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    body: dict[str, Any],
    field: str,
    problem: str,
) -> None:
    status, refused, _ = call(
        handlers, events.api("POST", "/runs", json.dumps({"input": inbox, **body})), context
    )

    assert (status, refused["field"]) == (400, field), refused
    assert problem in refused["problem"]


class Pages:
    """An S3 client whose listing has `pages` pages of 1,000 objects of 5 bytes."""

    def __init__(self, pages: int) -> None:
        self.pages, self.listed = pages, 0

    def get_paginator(self, _: str) -> Pages:
        return self

    def paginate(self, **_: Any) -> Any:
        for number in range(self.pages):
            self.listed += 1
            yield {
                "KeyCount": 1000,
                "Contents": [{"Size": 5}] * 1000,
                "IsTruncated": number < self.pages - 1,
            }


def test_the_count_stops_at_its_budget_and_says_it_is_a_lower_bound() -> None:
    spent = Pages(50)
    assert count_objects(spent, "data", "inbox/ds/", budget_seconds=0) == InputSize(
        1000, 5000, complete=False
    )
    assert spent.listed == 1

    assert count_objects(Pages(3), "data", "inbox/ds/", budget_seconds=60) == InputSize(3000, 15_000)
