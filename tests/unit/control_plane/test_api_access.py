"""Callers see and cancel only their own runs (operators all of them), and have a cap on runs in flight."""

from __future__ import annotations

import dataclasses
import json
from base64 import urlsafe_b64encode
from typing import Any

import pytest

from local.template import ACCOUNT
from tests.unit.control_plane.test_api import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

OPERATOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/platform/FeaturizerOperator"


@pytest.fixture
def operator_role(monkeypatch: pytest.MonkeyPatch) -> str:
    from api import app

    monkeypatch.setattr(app, "ACCESS", dataclasses.replace(app.ACCESS, operator_role_arn=OPERATOR_ROLE))
    return OPERATOR_ROLE


def test_another_caller_may_neither_read_nor_cancel_a_run_and_an_operator_may(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, inbox: str, operator_role: str
) -> None:
    _, created, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    run_id = created["run_id"]
    local_aws.set_job_state(created["jobRunId"], "RUNNING")
    assert call(handlers, events.api("GET", f"/runs/{run_id}"), context)[0] == 200

    for method in ("GET", "DELETE"):
        status, refused, _ = call(handlers, events.api(method, f"/runs/{run_id}", caller="mallory"), context)
        assert (status, refused["field"]) == (403, "run_id")
        assert "was started by another caller" in refused["problem"]
        assert "report" not in refused
    # the same session name in another role is another caller, and so is the operator role's name elsewhere
    other_role = events.api("GET", f"/runs/{run_id}", role="Analyst")
    assert call(handlers, other_role, context)[0] == 403
    assert (
        local_aws.client("emr-serverless").get_job_run(
            applicationId=local_aws.application_id, jobRunId=created["jobRunId"]
        )["jobRun"]["state"]
        == "RUNNING"
    )

    as_operator = {"caller": "oncall", "role": "FeaturizerOperator"}
    status, seen, _ = call(handlers, events.api("GET", f"/runs/{run_id}", **as_operator), context)
    assert (status, seen["run_id"]) == (200, run_id)
    status, cancelled, _ = call(handlers, events.api("DELETE", f"/runs/{run_id}", **as_operator), context)
    assert (status, cancelled["state"]) == (202, "CANCELLING")


def test_a_drop_run_belongs_to_the_operators(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, operator_role: str
) -> None:
    marker = events.s3_object_created(f"inbox/{dataset}/_START", 1795514400.0)
    handlers["UploadsFunction"](events.sqs([json.dumps(marker)]), context)
    (job,) = local_aws.job_runs(dataset)
    assert call(handlers, events.api("GET", f"/runs/{job['name']}"), context)[0] == 403
    operator = events.api("GET", f"/runs/{job['name']}", caller="oncall", role="FeaturizerOperator")
    assert call(handlers, operator, context)[0] == 200

    drops = {"started_by": "drop"}
    status, refused, _ = call(handlers, events.api("GET", "/runs", query=drops), context)
    assert (status, refused["field"]) == (403, "started_by")
    as_operator = events.api("GET", "/runs", caller="oncall", role="FeaturizerOperator", query=drops)
    status, listed, _ = call(handlers, as_operator, context)
    assert status == 200
    assert job["name"] in {run["run_id"] for run in listed["runs"]}
    assert {run["trigger"] for run in listed["runs"]} == {"drop"}


def test_a_caller_lists_their_own_runs_newest_first_a_page_at_a_time(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, inbox: str
) -> None:
    """Issue 23 (`remote list`): GET /runs pages through the caller's runs, each with its state; a bad
    parameter or a token this API did not give is a 400 naming it."""
    from api.requests import page_token

    bodies = [json.dumps({"input": inbox, "options": {"seed": seed}}) for seed in range(3)]
    started = {call(handlers, events.api("POST", "/runs", body), context)[1]["run_id"] for body in bodies}
    status, first, _ = call(handlers, events.api("GET", "/runs", query={"limit": "2"}), context)
    assert status == 200 and len(first["runs"]) == 2 and first["next"]
    status, rest, _ = call(handlers, events.api("GET", "/runs", query={"next": first["next"]}), context)
    assert status == 200 and rest["next"] is None
    listed = first["runs"] + rest["runs"]
    assert [run["run_id"] for run in listed if run["run_id"] in started] == [r["run_id"] for r in listed]
    assert {run["run_id"] for run in listed} == started
    assert all(run["state"] and run["trigger"] == "api" and run["input"] == inbox for run in listed)
    assert call(handlers, events.api("GET", "/runs", caller="mallory"), context)[1]["runs"] == []

    for query, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"started_by": "bob"}, "started_by"),
        ({"next": "not-a-token"}, "next"),
        ({"next": page_token({"pk": "run#x", "listed_by": "x", "created_at": "yesterday"})}, "next"),
        ({"next": urlsafe_b64encode(b"[" * 100_000).decode()}, "next"),  # JSON nested past the stack
        ({"limit": "²"}, "limit"),
        ({"limit": "1" * 5000}, "limit"),
        ({"page": "2"}, "page"),
    ):
        status, refused, _ = call(handlers, events.api("GET", "/runs", query=query), context)
        assert (status, refused["field"]) == (400, field), refused
    status, refused, _ = call(
        handlers, events.api("GET", "/runs", caller="mallory", query={"next": first["next"]}), context
    )
    assert (status, refused["field"]) == (400, "next"), "a token of another caller's listing lists nothing"


def test_a_caller_at_the_cap_of_runs_in_flight_gets_a_429_with_retry_after(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api import app

    monkeypatch.setattr(
        app.runs, "access", dataclasses.replace(app.runs.access, max_runs_in_flight_per_caller=2)
    )
    bodies = [json.dumps({"input": inbox, "options": {"seed": seed}}) for seed in range(3)]
    started = [call(handlers, events.api("POST", "/runs", body), context) for body in bodies[:2]]
    assert [status for status, _, _ in started] == [202, 202]

    status, refused, headers = call(handlers, events.api("POST", "/runs", bodies[2]), context)
    assert status == 429
    assert "you have 2 runs not yet ended, and the most is 2 (MaxRunsInFlightPerCaller)" in refused["problem"]
    assert headers["Retry-After"] == "60"
    assert call(handlers, events.api("POST", "/runs", bodies[0]), context)[0] == 202, (
        "a retry is not a new run"
    )
    assert call(handlers, events.api("POST", "/runs", bodies[2], caller="bob"), context)[0] == 202

    # one run ends and is reported: its caller may start another
    first = started[0][1]
    local_aws.set_job_state(first["jobRunId"], "FAILED", "boom")
    ended = events.emr_state_change(first["jobRunId"], "FAILED", 1795514400.0, local_aws.application_id, "x")
    handlers["NotifyFunction"](ended, context)
    assert call(handlers, events.api("POST", "/runs", bodies[2]), context)[0] == 202


def test_a_refused_start_frees_its_place_under_the_cap_and_its_retry_is_tracked(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    from api import app

    monkeypatch.setattr(
        app.runs, "access", dataclasses.replace(app.runs.access, max_runs_in_flight_per_caller=1)
    )
    start = app.emr.start_job_run
    secret = "arn:aws:iam::123456789012:role/featurizer-JobRuntimeRole"

    def refuse(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": f"cannot pass {secret}"}}, "Start"
        )

    monkeypatch.setattr(app.emr, "start_job_run", refuse)
    body = json.dumps({"input": inbox})
    status, error, _ = call(handlers, events.api("POST", "/runs", body), context)
    assert status == 502 and "arn:" not in json.dumps(error)
    assert (
        call(
            handlers,
            events.api("POST", "/runs", json.dumps({"input": inbox, "options": {"seed": 1}})),
            context,
        )[0]
        == 502
    ), "a refused run is not in flight"
    monkeypatch.setattr(app.emr, "start_job_run", start)
    status, created, _ = call(
        handlers, events.api("POST", "/runs", body), context
    )  # the same request, retried
    assert status == 202
    status, run, _ = call(handlers, events.api("GET", f"/runs/{created['run_id']}"), context)
    assert "arn:" not in json.dumps(run)
    item = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"run#{created['run_id']}"}}, ConsistentRead=True
    )["Item"]
    assert item["sweep"] == {"S": "RUN"} and "open_by" in item, "the retried run is open and counted again"
