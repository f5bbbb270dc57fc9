"""Bad input never gives a 5xx: each gets a 4xx naming the problem, AWS throttling a 503 with Retry-After,
and no error body echoes an ARN or an exception's text. The property-based test sends arbitrary bodies."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.runs import RunOptions
from tests.unit.control_plane.test_api import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def post(events: Any, body: str | None, *, base64_encoded: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = events.api("POST", "/runs", body)
    event["isBase64Encoded"] = base64_encoded
    return event


def assert_refused(response: tuple[int, dict[str, Any], dict], status: int, field: str, problem: str) -> None:
    got, error, _ = response
    assert (got, error["field"]) == (status, field), error
    assert problem in error["problem"], error["problem"]


@pytest.mark.parametrize(
    ("body", "base64_encoded", "status", "problem"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, False, 413, "is larger than 16384 bytes", id="huge"),
        pytest.param(
            '{"input": ' + "[" * 5000 + "]" * 5000 + "}", False, 400, "is not valid JSON", id="deep"
        ),
        pytest.param("not base64!", True, 400, "is marked base64-encoded but is not valid base64", id="b64"),
        pytest.param(base64.b64encode(b'{"input": "\xff"}').decode(), True, 400, "is not UTF-8", id="utf8"),
        pytest.param('{"input": "s3://featurizer-data/inbox/\\ud800/"}', False, 400, "", id="lone-surrogate"),
    ],
)
def test_unreadable_bodies_are_4xx(
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    body: str,
    base64_encoded: bool,
    status: int,
    problem: str,
) -> None:
    got, error, _ = call(handlers, post(events, body, base64_encoded=base64_encoded), context)
    assert got == status, error
    assert problem in error["problem"]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        pytest.param("../etc/", 'folder ".." is not a safe path segment', id="dot-dot"),
        pytest.param("Training/./Banana/", 'folder "." is not a safe path segment', id="dot"),
        pytest.param("Training//Banana/", 'folder "" is not a safe path segment', id="empty"),
        pytest.param("Training/a#b/", 'folder "a#b" is not a safe path segment', id="hash"),
        pytest.param("Training/a?b/", 'folder "a?b" is not a safe path segment', id="question-mark"),
        pytest.param("Training/a\u0007b/", "is not a safe path segment", id="control-character"),
    ],
)
def test_only_safe_path_segments_are_accepted_in_input(
    handlers: dict[str, Any], events: Any, context: Any, inbox: str, path: str, problem: str
) -> None:
    body = json.dumps({"input": f"{inbox}{path}"})
    assert_refused(call(handlers, post(events, body), context), 400, "input", problem)


def test_a_multi_megabyte_input_is_refused_naming_its_limit(
    handlers: dict[str, Any], events: Any, context: Any, inbox: str
) -> None:
    body = json.dumps({"input": inbox + "a" * 5_000})
    assert_refused(call(handlers, post(events, body), context), 400, "input", "at most 1100 characters")


@pytest.mark.parametrize(
    ("code", "status", "error_name"),
    [
        ("ThrottlingException", 503, "Throttled"),
        ("InternalServerException", 502, "UpstreamError"),
        ("ResourceNotFoundException", 502, "UpstreamError"),
    ],
)
def test_emr_errors_while_reading_a_run_are_502_or_503_without_internal_details(
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    status: int,
    error_name: str,
) -> None:
    from api import app

    _, created, _ = call(handlers, post(events, json.dumps({"input": inbox})), context)
    secret = f"arn:aws:emr-serverless:us-east-1:123456789012:/applications/x/jobruns/{created['jobRunId']}"

    def failing(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": f"internal detail {secret}"}}, "GetJobRun")

    monkeypatch.setattr(app.emr, "get_job_run", failing)
    for method in ("GET", "DELETE"):
        got, error, headers = call(handlers, events.api(method, f"/runs/{created['run_id']}"), context)
        assert (got, error["error"]) == (status, error_name)
        assert "arn:" not in json.dumps(error) and "internal detail" not in json.dumps(error)
        assert ("Retry-After" in headers) == (status == 503)


def test_dynamodb_throttling_is_a_503_with_retry_after(
    handlers: dict[str, Any], events: Any, context: Any, inbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import app

    def throttled(**kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem"
        )

    monkeypatch.setattr(app.table, "get_item", throttled)
    got, error, headers = call(handlers, events.api("GET", "/runs/some-run"), context)
    assert (got, error["error"], headers["Retry-After"]) == (503, "Throttled", "5")


def test_a_job_that_ends_just_before_its_cancel_is_a_409(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    inbox: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api import app

    _, created, _ = call(handlers, post(events, json.dumps({"input": inbox})), context)
    local_aws.set_job_state(created["jobRunId"], "RUNNING")

    def ended_meanwhile(**kwargs: Any) -> None:
        local_aws.set_job_state(created["jobRunId"], "SUCCESS")
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "job run is terminal"}}, "CancelJobRun"
        )

    monkeypatch.setattr(app.emr, "cancel_job_run", ended_meanwhile)
    got, error, _ = call(handlers, events.api("DELETE", f"/runs/{created['run_id']}"), context)
    assert got == 409
    assert "already finished with state SUCCESS" in error["problem"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[1, 2]", "holds a JSON list, not an object"),
        (b"not json", "is not valid JSON"),
    ],
)
def test_a_completed_flag_that_is_no_json_object_is_a_failed_run_not_a_500(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, inbox: str, dataset: str,
    body: bytes, problem: str,
) -> None:  # fmt: skip
    _, created, _ = call(handlers, post(events, json.dumps({"input": inbox})), context)
    key = f"runs/{dataset}/{created['run_id']}/_COMPLETED.json"
    local_aws.client("s3").put_object(Bucket="featurizer-data", Key=key, Body=body)
    got, status, _ = call(handlers, events.api("GET", f"/runs/{created['run_id']}"), context)
    assert (got, status["state"]) == (200, "FAILED")
    assert problem in status["failure"]["message"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
OPTION = st.sampled_from([*RunOptions.model_fields, "x"])


@st.composite
def bodies(draw: st.DrawFn, inbox: str) -> tuple[str, bool]:
    """Request bodies, from well-formed runs with odd options and inputs to arbitrary text and bytes."""
    kind = draw(st.sampled_from(["request", "json", "text", "bytes"]))
    if kind == "bytes":
        return base64.b64encode(draw(st.binary(max_size=64))).decode(), True
    if kind == "text":
        return draw(st.text(max_size=64)), draw(st.booleans())
    if kind == "json":
        return json.dumps(draw(JSON)), False
    suffix = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=24))
    request = {
        "input": draw(st.sampled_from([inbox, inbox + suffix, suffix, "s3://other/inbox/x/"])),
        "options": draw(st.dictionaries(OPTION, JSON, max_size=3)),
    }
    return json.dumps(request), False


def test_no_request_body_gets_a_5xx(handlers: dict[str, Any], events: Any, context: Any, inbox: str) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies(inbox))
    def never_5xx(body: tuple[str, bool]) -> None:
        text, base64_encoded = body
        response = handlers["ApiFunction"](post(events, text, base64_encoded=base64_encoded), context)
        assert response["statusCode"] < 500, (text, response["body"])
        error = json.loads(response["body"])
        assert "Traceback" not in response["body"] and "arn:aws:emr" not in response["body"], error

    never_5xx()
