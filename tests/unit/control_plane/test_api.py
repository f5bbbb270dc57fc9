"""The HTTP API handler fed API Gateway HTTP API (v2, IAM-authorized) requests, against local AWS services."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from common.models import TERMINAL_STATES
from common.runs import COMPLETED, ENDED_STATES, START_FAILED
from tests.paths import EVENTS_DIR

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

REQUEST_TIME = 1795514400.0  # 2026-11-24T10:00:00Z, the time of the request fixtures
FIXTURE_RUN = "flowers-20261124T100500-3f9a1c2e"  # the run of tests/events/run_output/


def call(handlers: dict[str, Any], event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any], dict]:
    response = handlers["ApiFunction"](event, context)
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


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
    record_job_run = records.record_job_run

    def crash_once(*args: Any, **kwargs: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise TimeoutError("Task timed out after 29.00 seconds")
        record_job_run(*args, **kwargs)

    monkeypatch.setattr(records, "record_job_run", crash_once)
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
    assert "metrics" not in running and "progress" not in running

    s3 = local_aws.client("s3")  # the job publishes its stage and images done as it goes
    progress = {"stage": "featurize", "images_done": 400, "images_total": 1297, "updated_at": "2026-12-03"}
    s3.put_object(
        Bucket="featurizer-data", Key=f"runs/{dataset}/{run_id}/progress.json", Body=json.dumps(progress)
    )
    assert call(handlers, events.api("GET", f"/runs/{run_id}"), context)[1]["progress"] == progress
    odd = {**progress, "images_done": "400", "extra": "x" * 10_000}  # not the job's: shown as nothing
    s3.put_object(
        Bucket="featurizer-data", Key=f"runs/{dataset}/{run_id}/progress.json", Body=json.dumps(odd)
    )
    assert "progress" not in call(handlers, events.api("GET", f"/runs/{run_id}"), context)[1]

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
    assert "progress" not in done  # the summary says it all
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


def test_outputs_the_api_may_not_read_are_a_500_naming_the_permission_not_a_missing_run(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    from api import app

    _, created, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)

    def refused(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    monkeypatch.setattr(app.s3, "get_object", refused)
    status, error, _ = call(handlers, events.api("GET", f"/runs/{created['run_id']}"), context)

    assert status == 500
    assert error["problem"].startswith(
        "the service's role lacks s3:GetObject: tell its operators (request id "
    )
    assert "arn:" not in json.dumps(error), "the error names the permission, not the resources"


BAD_REQUESTS = [
    pytest.param("{not json", 400, "body", "is not valid JSON", id="invalid-json"),
    pytest.param("", 400, "body", "is empty", id="empty-body"),
    pytest.param('["s3://x/"]', 400, "body", "must be a JSON object", id="body-not-object"),
    pytest.param('{"options": {}}', 400, "input", "is required", id="missing-input"),
    pytest.param('{"input": "{inbox}", "colour": "red"}', 400, "colour", "unknown field", id="unknown-field"),
    pytest.param(
        '{"input": "{inbox}", "options": {"pca_components": 10}}',
        400, "options.pca_components", "unknown option; the options are: engine, precision, pca_k",
        id="unknown-option",
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
        '{"input": "{inbox}", "options": {"engine": "tensorflow"}}',
        400, "options.engine", "this deployment has no TensorFlow environment", id="tensorflow-not-deployed",
    ),
    pytest.param(
        '{"input": "{inbox}", "options": {"precision": "int8"}}',
        400, "options.precision", "this deployment has no INT8 model", id="int8-not-deployed",
    ),
    pytest.param(
        '{"input": "{inbox}", "options": {"precision": "int8", "engine": "tensorflow"}}',
        400, "options", "precision int8 is an ONNX model for engine onnx", id="int8-with-tensorflow",
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
        400, "input", "dataset folder \"my photos\" must match", id="bad-dataset-name",
    ),
    pytest.param(
        '{"input": "s3://featurizer-data/inbox/flowers\\n/"}',
        400, "input", "dataset folder \"flowers\\n\" must match", id="dataset-name-ending-in-a-newline",
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


OUT_OF_RANGE = [
    pytest.param("seed", "100000000000000000000000000000000000000", id="seed-1e38-as-json-integer"),
    pytest.param("seed", "-1", id="seed-negative"),
    pytest.param("seed", "2147483648", id="seed-above-32-bits"),
    pytest.param("test_fraction", "5e-324", id="test-fraction-subnormal"),
    pytest.param("test_fraction", "1.0", id="test-fraction-one"),
    pytest.param("pca_variance", "1e-200", id="pca-variance-tiny"),
    pytest.param("pca_variance", "NaN", id="pca-variance-nan"),
    pytest.param("pca_k", "1281", id="pca-k-above-the-features"),
    pytest.param("batch_size", "257", id="batch-size-above-its-bound"),
    pytest.param("batch_size", "0", id="batch-size-zero"),
]


@pytest.mark.parametrize(("option", "number"), OUT_OF_RANGE)
def test_an_out_of_range_number_is_a_400_naming_the_field_and_starts_nothing(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, inbox: str, option: str, number: str
) -> None:
    before = len(local_aws.job_runs())
    body = f'{{"input": "{inbox}", "options": {{"{option}": {number}}}}}'
    status, error, _ = call(handlers, events.api("POST", "/runs", body), context)

    assert status == 400, error
    assert error["field"] == f"options.{option}"
    assert number.lower() in error["problem"].lower()
    assert len(local_aws.job_runs()) == before
    assert not run_records(local_aws, inbox), "no run may be recorded for a refused request"


def unavailable(*args: Any, **kwargs: Any) -> None:
    raise ConnectionError("DynamoDB is unavailable")


def run_records(local_aws: Any, inbox: str) -> list[dict[str, Any]]:
    dataset = inbox.rstrip("/").rsplit("/", 1)[-1]
    items = local_aws.client("dynamodb").scan(TableName=local_aws.table_name)["Items"]
    return [i for i in items if i["pk"]["S"].startswith(f"run#{dataset}-")]


def test_the_run_is_recorded_before_emr_is_asked(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The record cannot be written (DynamoDB fails): no job run is started, so none is left untracked."""
    from common import records

    monkeypatch.setattr(records, "put_run", unavailable)
    before = len(local_aws.job_runs())
    with pytest.raises(ConnectionError):
        handlers["ApiFunction"](events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    assert len(local_aws.job_runs()) == before


def test_a_started_run_whose_job_run_was_not_recorded_is_found_by_its_name(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EMR started the job run, then writing its id failed: GET finds the job run by the run's name and
    links it, so the run can be followed and cancelled as any other."""
    from common import records

    monkeypatch.setattr(records, "record_job_run", unavailable)
    with pytest.raises(ConnectionError):
        handlers["ApiFunction"](events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    monkeypatch.undo()
    (recorded,) = run_records(local_aws, inbox)
    assert "job_run_id" not in recorded
    run_id = recorded["run_id"]["S"]
    (job,) = local_aws.job_runs(run_id)
    local_aws.stamp_creation_time(job["id"])
    local_aws.set_job_state(job["id"], "RUNNING")

    status, found, _ = call(handlers, events.api("GET", f"/runs/{run_id}"), context)
    assert status == 200 and found["emr"]["job_run_id"] == job["id"]
    index = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"jobrun#{job['id']}"}}, ConsistentRead=True
    )
    assert index["Item"]["run_id"] == {"S": run_id}, "the link is written once found"
    status, cancelled, _ = call(handlers, events.api("DELETE", f"/runs/{run_id}"), context)
    assert (status, cancelled.get("jobRunId")) == (202, job["id"]), cancelled


def test_a_run_whose_start_never_reached_emr_is_reported_as_not_started(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StartJobRun timed out before EMR made a job run: the run is on record, STARTING for as long as an
    answer could still come, then START_FAILED; it can never be cancelled, since it never ran."""
    from botocore.exceptions import ReadTimeoutError

    from api import app
    from common import tracking

    def timed_out(**kwargs: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://emr-serverless.us-east-1.amazonaws.com")

    monkeypatch.setattr(app.emr, "start_job_run", timed_out)
    status, unavailable, headers = call(
        handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context
    )
    assert (status, unavailable["error"], headers["Retry-After"]) == (503, "Unavailable", "5")
    (recorded,) = run_records(local_aws, inbox)
    run_id = recorded["run_id"]["S"]

    status, starting, _ = call(handlers, events.api("GET", f"/runs/{run_id}"), context)
    assert (status, starting["state"]) == (200, "STARTING")
    status, refused, _ = call(handlers, events.api("DELETE", f"/runs/{run_id}"), context)
    assert status == 409 and "still starting" in refused["problem"]

    later = time.time() + tracking.START_GRACE_SECONDS + 1
    monkeypatch.setattr(tracking.time, "time", lambda: later)
    status, lost, _ = call(handlers, events.api("GET", f"/runs/{run_id}"), context)
    assert (status, lost["state"]) == (200, "START_FAILED")
    assert "started no job run" in lost["failure"]["message"]


def test_a_run_emr_refuses_is_a_502_and_its_record_says_why(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    from api import app

    def refuse(**kwargs: Any) -> None:
        error = {"Error": {"Code": "ServiceQuotaExceededException", "Message": "too many job runs"}}
        raise ClientError(error, "StartJobRun")

    monkeypatch.setattr(app.emr, "start_job_run", refuse)
    status, error, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    assert status == 502
    assert error["problem"].startswith(
        "EMR Serverless refused to start the run (ServiceQuotaExceededException)"
    )

    (recorded,) = run_records(local_aws, inbox)
    status, run, _ = call(handlers, events.api("GET", f"/runs/{recorded['run_id']['S']}"), context)
    assert (status, run["state"]) == (200, "START_FAILED")
    assert "too many job runs" in run["failure"]["message"]


def test_unknown_and_malformed_run_ids(handlers: dict[str, Any], events: Any, context: Any) -> None:
    status, missing, _ = call(handlers, events.api("GET", "/runs/flowers-20261124T100000-0a1b2c3d"), context)
    assert status == 404
    assert missing == {
        "error": "RunNotFoundError",
        "field": "run_id",
        "problem": "no run with id 'flowers-20261124T100000-0a1b2c3d'",
        "problems": [{"field": "run_id", "problem": "no run with id 'flowers-20261124T100000-0a1b2c3d'"}],
    }
    for malformed_id in ("bad%20id", "-flowers", ".."):
        status, malformed, _ = call(handlers, events.api("DELETE", f"/runs/{malformed_id}"), context)
        assert status == 400, malformed_id
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


def test_the_ended_states_are_emr_s_with_success_told_apart_and_a_start_that_failed() -> None:
    # GET /runs answers COMPLETED or FAILED for an EMR SUCCESS (by the flag), START_FAILED for no job run.
    assert (TERMINAL_STATES - {"SUCCESS"}) | {COMPLETED, START_FAILED} == ENDED_STATES


def test_a_refit_names_a_completed_run_of_its_dataset_and_the_job_reads_that_run(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    """Issue 21: `"from_run"` refits from a run's features; a run that has not completed is a 400 naming
    the field, and starts nothing."""
    _, first, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    refit = json.dumps({"input": inbox, "from_run": first["run_id"], "options": {"pca_k": 5}})
    status, refused, _ = call(handlers, events.api("POST", "/runs", refit), context)
    assert status == 400, refused
    assert refused["field"] == "from_run" and "has not completed" in refused["problem"]
    status, refused, _ = call(
        handlers, events.api("POST", "/runs", refit.replace(first["run_id"], "../x")), context
    )
    assert status == 400 and refused["field"] == "from_run"
    resplit = json.dumps({"input": inbox, "from_run": first["run_id"], "options": {"seed": 7}})
    status, refused, _ = call(handlers, events.api("POST", "/runs", resplit), context)
    assert status == 400 and refused["field"] == "options.seed"
    assert "keeps the train/test split and features of run" in refused["problem"]
    planned = json.dumps(
        {"input": inbox, "from_run": first["run_id"], "options": {"seed": 7}, "dry_run": True}
    )
    status, refused, _ = call(handlers, events.api("POST", "/runs", planned), context)
    assert status == 400 and refused["field"] == "options.seed"
    unknown = refit.replace(first["run_id"], f"{dataset}-20261124T100000-00000000")
    assert call(handlers, events.api("POST", "/runs", unknown), context)[0] == 404
    assert len(local_aws.job_runs(dataset)) == 1  # the first run only
    emr = local_aws.client("emr-serverless")
    started = {j["id"] for j in emr.list_job_runs(applicationId=local_aws.application_id)["jobRuns"]}

    local_aws.client("s3").put_object(
        Bucket="featurizer-data",
        Key=f"runs/{dataset}/{first['run_id']}/_COMPLETED.json",
        Body=(EVENTS_DIR / "run_output" / "_COMPLETED.json").read_bytes(),
    )
    status, created, _ = call(handlers, events.api("POST", "/runs", refit), context)
    assert status == 202, created
    (new,) = {j["id"] for j in emr.list_job_runs(applicationId=local_aws.application_id)["jobRuns"]} - started
    arguments = emr.get_job_run(applicationId=local_aws.application_id, jobRunId=new)["jobRun"]["jobDriver"][
        "sparkSubmit"
    ]["entryPointArguments"]
    assert arguments[arguments.index("--from-run") + 1] == (
        f"s3://{local_aws.resources['DataBucket']}/runs/{dataset}/{first['run_id']}/"
    )
    assert arguments[-2:] == ["--pca-k", "5"]


def test_a_predict_run_names_a_completed_run_and_the_job_reads_that_run(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    """Issue 23: `"predict_with"` classifies the input with a completed run's pipeline; a run that has not
    completed, an option the trained run decides, or a refit at once are 400s naming the field, and start
    nothing."""
    _, trained, _ = call(handlers, events.api("POST", "/runs", json.dumps({"input": inbox})), context)
    predict = {"input": inbox, "predict_with": trained["run_id"]}
    refusals = [
        (predict, "predict_with", "has not completed"),
        ({**predict, "options": {"pca_k": 5}}, "options.pca_k", "is not taken by a predict run"),
        ({**predict, "from_run": trained["run_id"]}, "predict_with", "not both"),
        ({**predict, "predict_with": "../x"}, "predict_with", ""),
    ]
    for body, field, problem in refusals:
        status, refused, _ = call(handlers, events.api("POST", "/runs", json.dumps(body)), context)
        assert (status, refused["field"]) == (400, field), refused
        assert problem in refused["problem"]
    assert len(local_aws.job_runs(dataset)) == 1  # the trained run only
    emr = local_aws.client("emr-serverless")
    started = {j["id"] for j in emr.list_job_runs(applicationId=local_aws.application_id)["jobRuns"]}

    local_aws.client("s3").put_object(
        Bucket="featurizer-data",
        Key=f"runs/{dataset}/{trained['run_id']}/_COMPLETED.json",
        Body=(EVENTS_DIR / "run_output" / "_COMPLETED.json").read_bytes(),
    )
    status, created, _ = call(handlers, events.api("POST", "/runs", json.dumps(predict)), context)
    assert status == 202, created
    (new,) = {j["id"] for j in emr.list_job_runs(applicationId=local_aws.application_id)["jobRuns"]} - started
    arguments = emr.get_job_run(applicationId=local_aws.application_id, jobRunId=new)["jobRun"]["jobDriver"][
        "sparkSubmit"
    ]["entryPointArguments"]
    assert arguments[arguments.index("--model-run") + 1] == (
        f"s3://{local_aws.resources['DataBucket']}/runs/{dataset}/{trained['run_id']}/"
    )
    assert "--model" not in arguments and "--weights" not in arguments
    predicted = json.loads((EVENTS_DIR / "run_output" / "_COMPLETED.json").read_text())
    predicted["summary"]["model_run"] = arguments[arguments.index("--model-run") + 1]
    local_aws.client("s3").put_object(
        Bucket="featurizer-data",
        Key=f"runs/{dataset}/{created['run_id']}/_COMPLETED.json",
        Body=json.dumps(predicted).encode(),
    )
    again = {**predict, "predict_with": created["run_id"]}
    status, refused, _ = call(handlers, events.api("POST", "/runs", json.dumps(again)), context)
    assert (status, refused["field"]) == (400, "predict_with")
    assert (
        f"is a predict run, which fitted no pipeline: predict with the run it"
        f" predicted with ({trained['run_id']})" in refused["problem"]
    )
    status, shown, _ = call(handlers, events.api("GET", f"/runs/{created['run_id']}"), context)
    assert shown["predict_with"] == trained["run_id"]
