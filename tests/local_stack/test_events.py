"""The local stack's events have the keys of the real ones (the fixtures in tests/events/)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from local import eventbridge
from local.api import http_api_event
from local.template import ACCOUNT, DATA_BUCKET
from tests.local_stack.job_runs import a_job_run
from tests.paths import EVENTS_DIR


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return loaded


def keys(event: dict[str, Any], *path: str) -> set[str]:
    for name in path:
        event = event[name]
    return set(event)


def test_the_emr_job_run_state_change_has_the_keys_of_the_real_one() -> None:
    real = fixture("emr_job_run_state_change_failed.json")
    run = a_job_run(
        state="FAILED",
        state_details="Job failed, please check complete logs in configured logging destination.",
    )

    local = eventbridge.job_run_state_change(run.state_change_detail("RUNNING"))

    assert keys(local) == keys(real)
    assert keys(local, "detail") == keys(real, "detail")
    assert {name: local[name] for name in ("detail-type", "source")} == {
        name: real[name] for name in ("detail-type", "source")
    }


def test_the_s3_object_created_event_has_the_keys_of_the_real_one() -> None:
    real = fixture("eventbridge_s3_object_created.json")
    bucket = SimpleNamespace(name=DATA_BUCKET, region_name="us-east-1")
    key = SimpleNamespace(
        name="inbox/fruits/Banana/img_0001.jpg", size=48213, etag='"b1946ac9"', version_id="IYV3p45BT0ac"
    )

    local = eventbridge.object_event(ACCOUNT, bucket, "s3:ObjectCreated:Put", key)

    assert keys(local) == keys(real)
    assert keys(local, "detail") == keys(real, "detail")
    assert keys(local, "detail", "object") == keys(real, "detail", "object")
    assert (local["detail-type"], local["detail"]["reason"]) == (real["detail-type"], "PutObject")


def test_the_http_api_events_have_the_keys_of_the_real_ones() -> None:
    for name, route, path, body, parameters in [
        ("apigw_http_post_runs.json", "POST /runs", "/runs", b'{"input": "s3://x/"}', {}),
        ("apigw_http_get_run.json", "GET /runs/{run_id}", "/runs/r1", b"", {"run_id": "r1"}),
    ]:
        real = fixture(name)
        headers = {"host": "127.0.0.1:8080", "user-agent": "curl/8.0"}

        local = http_api_event(route, route.split()[0], path, "", headers, body, parameters, "127.0.0.1")

        assert keys(local) == keys(real), name
        for part in [
            ("requestContext",),
            ("requestContext", "http"),
            ("requestContext", "authorizer", "iam"),
        ]:
            assert keys(local, *part) == keys(real, *part), (name, part)
