"""The HTTP API handler fed API Gateway HTTP API (v2, IAM-authorized) requests, against local AWS services."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
REQUEST_TIME = 1795514400.0  # 2026-11-24T10:00:00Z, the time of the request fixtures
FIXTURE_RUN = "flowers-20261124T100500-3f9a1c2e"  # the run of tests/events/run_output/


def call(handlers: dict[str, Any], event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict]:
    response = handlers["ApiFunction"](event, context)
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


@pytest.fixture
def inbox(local_aws: Any, dataset: str) -> str:
    """An inbox with two images; returns its s3:// URI."""
    bucket = local_aws.resources["DataBucket"]
    s3 = local_aws.client("s3")
    for key in ("Training/Banana/img_0001.jpg", "Test/Banana/img_0002.jpg"):
        s3.put_object(Bucket=bucket, Key=f"inbox/{dataset}/{key}", Body=b"\xff\xd8\xff\xe0 jpeg")
    return f"s3://{bucket}/inbox/{dataset}/"


def test_post_runs_returns_202_with_run_id_job_run_id_and_status_url(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    body = json.dumps({"input": inbox, "options": {"pca_k": 20, "engine": "onnx", "test_fraction": 0.25}})
    status, created, headers = call(handlers, events.api("POST", "/runs", body), context)

    assert status == 202, created
    assert created["run_id"].startswith(f"{dataset}-20261124T100000-")
    assert (
        created["status_url"]
        == f"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/runs/{created['run_id']}"
    )
    assert headers["Location"] == created["status_url"]
    job = local_aws.client("emr-serverless").get_job_run(
        applicationId=local_aws.application_id, jobRunId=created["jobRunId"]
    )["jobRun"]
    assert job["name"] == created["run_id"]
    arguments = job["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    assert arguments == [
        "--input", inbox,
        "--output", f"s3://{local_aws.resources['DataBucket']}/runs/{dataset}/",
        "--run-id", created["run_id"],
        "--model", "s3://featurizer-artifacts/models/featurizer-model.onnx",
        "--engine", "onnx",
        "--pca-k", "20",
        "--test-fraction", "0.25",
    ]  # fmt: skip
    assert job["executionTimeoutMinutes"] == 120


def test_the_same_request_sent_twice_starts_one_run(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    body = json.dumps({"input": inbox, "options": {"pca_variance": 0.9}})
    first_status, first, _ = call(handlers, events.api("POST", "/runs", body, at=REQUEST_TIME), context)
    # the client retries: a new HTTP request (new request id, 7 s later) with the same body
    retry_status, retry, _ = call(handlers, events.api("POST", "/runs", body, at=REQUEST_TIME + 7), context)

    assert (first_status, retry_status) == (202, 202)
    assert retry["run_id"] == first["run_id"]
    assert retry["jobRunId"] == first["jobRunId"]
    assert len(local_aws.job_runs(dataset)) == 1

    # a different request (other options) is another run
    other = json.dumps({"input": inbox, "options": {"pca_k": 5}})
    other_status, other_run, _ = call(handlers, events.api("POST", "/runs", other), context)
    assert other_status == 202
    assert other_run["run_id"] != first["run_id"]
    assert len(local_aws.job_runs(dataset)) == 2


def test_a_retry_after_a_crash_in_the_middle_of_starting_sends_the_same_client_token(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMR accepted the job, then the Lambda died before recording it; the client retries the request.

    moto does not deduplicate by clientToken; EMR Serverless does, so equal tokens mean one job run on AWS.
    """
    from common import records

    crashed: list[bool] = []
    put_run = records.put_run

    def crash_once(*args: Any, **kwargs: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise TimeoutError("Task timed out after 29.00 seconds")
        put_run(*args, **kwargs)

    monkeypatch.setattr(records, "put_run", crash_once)
    body = json.dumps({"input": inbox, "options": {"seed": 3}})
    with pytest.raises(TimeoutError):
        handlers["ApiFunction"](events.api("POST", "/runs", body, at=REQUEST_TIME), context)
    status, created, _ = call(handlers, events.api("POST", "/runs", body, at=REQUEST_TIME + 30), context)

    assert status == 202
    tokens = local_aws.client_tokens(created["run_id"])
    assert len(tokens) == 2, "both attempts called StartJobRun for the same run id"
    assert tokens[0] == tokens[1]


def test_get_run_reports_emr_state_then_outputs_once_complete(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    _, created, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    run_id = created["run_id"]
    local_aws.set_job_state(created["jobRunId"], "RUNNING")

    status, running, _ = call(handlers, events.api("GET", f"/runs/{run_id}"), context)
    assert status == 200
    assert running["state"] == "RUNNING"
    assert running["emr"]["job_run_id"] == created["jobRunId"]
    assert running["output"] == f"s3://featurizer-data/runs/{dataset}/{run_id}/"
    assert running["logs"].endswith(f"/applications/{local_aws.application_id}/jobs/{created['jobRunId']}/")
    assert "metrics" not in running

    s3 = local_aws.client("s3")
    for name in ("_COMPLETED.json", "metrics.json", "timings.json"):
        s3.put_object(
            Bucket="featurizer-data",
            Key=f"runs/{dataset}/{run_id}/{name}",
            Body=(EVENTS_DIR / "run_output" / name).read_bytes(),
        )
    local_aws.set_job_state(created["jobRunId"], "SUCCESS")
    status, done, _ = call(handlers, events.api("GET", f"/runs/{run_id}"), context)
    assert status == 200
    assert done["state"] == "COMPLETED"
    assert done["summary"]["images_featurized"] == 1297
    assert done["timings"]["total_seconds"] == 754.3
    assert done["metrics"]["accuracy"] == 0.9637
    report = f"runs/flowers/{FIXTURE_RUN}/report.html"
    assert done["report"]["uri"] == f"s3://featurizer-data/{report}"
    assert parse_qs(urlparse(done["report"]["url"]).query)["X-Amz-Expires"] == ["3600"]
    s3.put_object(Bucket="featurizer-data", Key=report, Body=b"<!DOCTYPE html>", ContentType="text/html")
    with urllib.request.urlopen(done["report"]["url"]) as opened:  # the link works without credentials
        assert opened.read() == b"<!DOCTYPE html>"


def test_delete_cancels_a_running_run_and_refuses_a_finished_one(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, inbox: str
) -> None:
    _, created, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    local_aws.set_job_state(created["jobRunId"], "RUNNING")

    status, cancelled, _ = call(handlers, events.api("DELETE", f"/runs/{created['run_id']}"), context)
    assert status == 202
    assert cancelled == {"run_id": created["run_id"], "jobRunId": created["jobRunId"], "state": "CANCELLING"}
    job = local_aws.client("emr-serverless").get_job_run(
        applicationId=local_aws.application_id, jobRunId=created["jobRunId"]
    )["jobRun"]
    assert job["state"] == "CANCELLED"

    status, refused, _ = call(handlers, events.api("DELETE", f"/runs/{created['run_id']}"), context)
    assert status == 409
    assert refused["field"] == "run_id"
    assert "already finished with state CANCELLED" in refused["problem"]


BAD_REQUESTS = [
    pytest.param("{not json", 400, "body", "is not valid JSON", id="invalid-json"),
    pytest.param("", 400, "body", "is empty", id="empty-body"),
    pytest.param('["s3://x/"]', 400, "body", "must be a JSON object", id="body-not-object"),
    pytest.param('{"options": {}}', 400, "input", "is required", id="missing-input"),
    pytest.param('{"input": "{inbox}", "colour": "red"}', 400, "colour", "unknown field", id="unknown-field"),
    pytest.param(
        '{"input": "{inbox}", "options": {"pca_components": 10}}',
        400, "options.pca_components", "unknown option; the options are: engine, pca_k", id="unknown-option",
    ),
    pytest.param(
        '{"input": "{inbox}", "options": {"pca_k": "10"}}',
        400, "options.pca_k", 'must be an integer, got "10"', id="wrong-type-int",
    ),
    pytest.param(
        '{"input": "{inbox}", "options": {"test_fraction": "0.2"}}',
        400, "options.test_fraction", "must be a number", id="wrong-type-float",
    ),
    pytest.param('{"input": 42}', 400, "input", "must be a string, got 42", id="wrong-type-input"),
    pytest.param(
        '{"input": "{inbox}", "options": {"engine": "torch"}}',
        400, "options.engine", "must be one of 'onnx' or 'tensorflow'", id="unknown-engine",
    ),
    pytest.param(
        '{"input": "{inbox}", "options": {"pca_k": 0}}',
        400, "options.pca_k", "greater than or equal to 1", id="out-of-range",
    ),
    pytest.param(
        '{"input": "{inbox}", "options": {"pca_k": 10, "pca_variance": 0.9}}',
        400, "options", "set pca_k or pca_variance, not both", id="both-pca-settings",
    ),
    pytest.param(
        '{"input": "s3://someone-elses-bucket/inbox/flowers/"}',
        400, "input", "must be in the service's data bucket s3://featurizer-data/", id="outside-data-bucket",
    ),
    pytest.param('{"input": "https://example.com/x/"}', 400, "input", "must be an s3:// URI", id="not-s3"),
    pytest.param('{"input": "s3://featurizer-data/"}', 400, "input", "prefix is empty", id="empty-prefix"),
    pytest.param(
        '{"input": "s3://featurizer-data/inbox/"}', 400, "input", "prefix is empty", id="inbox-root"
    ),
    pytest.param(
        '{"input": "s3://featurizer-data/runs/flowers/"}',
        400, "input", "must be under s3://featurizer-data/inbox/", id="outside-inbox",
    ),
    pytest.param(
        '{"input": "s3://featurizer-data/inbox/my photos/"}',
        400, "input", "dataset folder 'my photos' must match", id="bad-dataset-name",
    ),
    pytest.param(
        '{"input": "s3://featurizer-data/inbox/nothing-uploaded-here/"}',
        400, "input", "no objects under s3://featurizer-data/inbox/nothing-uploaded-here/", id="no-objects",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "field", "problem"), BAD_REQUESTS)
def test_bad_input_gets_a_4xx_naming_the_field_and_problem(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    body: str,
    status: int,
    field: str,
    problem: str,
) -> None:
    before = len(local_aws.job_runs())
    got_status, error, _ = call(
        handlers, events.api("POST", "/runs", body.replace("{inbox}", inbox)), context
    )

    assert got_status == status, error
    assert error["field"] == field
    assert problem in error["problem"], error["problem"]
    assert {"field": field, "problem": error["problem"]} in error["problems"]
    assert len(local_aws.job_runs()) == before


def test_unknown_and_malformed_run_ids(handlers: dict[str, Any], events: Any, context: Any) -> None:
    status, missing, _ = call(handlers, events.api("GET", "/runs/flowers-20261124T100000-0a1b2c3d"), context)
    assert status == 404
    assert missing == {
        "error": "RunNotFoundError",
        "field": "run_id",
        "problem": "no run with id 'flowers-20261124T100000-0a1b2c3d'",
        "problems": [{"field": "run_id", "problem": "no run with id 'flowers-20261124T100000-0a1b2c3d'"}],
    }
    status, malformed, _ = call(handlers, events.api("DELETE", "/runs/bad%20id"), context)
    assert status == 400
    assert malformed["field"] == "run_id"


def test_the_request_fixture_is_accepted_as_delivered(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any
) -> None:
    """tests/events/apigw_http_post_runs.json unchanged: it names inbox/flowers/ of the fixture bucket."""
    local_aws.client("s3").put_object(
        Bucket="featurizer-data", Key="inbox/flowers/Training/Kiwi/k1.jpg", Body=b"x"
    )
    status, created, _ = call(handlers, events.load("apigw_http_post_runs.json"), context)
    assert status == 202, created
    assert created["options"] == {"pca_k": 20}
