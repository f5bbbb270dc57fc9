"""The HTTP API on the local stack: POST /runs, GET /runs/{id} to the end, DELETE /runs/{id}."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.template import ARTIFACTS_BUCKET, DATA_BUCKET
from tests.e2e.stack import RunningStack, notification, wait_for

MODEL_KEY = "models/featurizer-model.onnx"  # template.yaml's ModelKey default


def post_run(stack: RunningStack, dataset: str, seed: int) -> dict[str, str]:
    """POST /runs; the seed makes each test's request distinct (an identical one returns the same run)."""
    request = {"input": f"s3://{DATA_BUCKET}/inbox/{dataset}/", "options": {"seed": seed}}
    status, body = stack.api("POST", "/runs", request)
    assert status == 202, body
    return body


def follow(stack: RunningStack, run_id: str, until: tuple[str, ...], timeout: float) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        status, body = stack.api("GET", f"/runs/{run_id}")
        assert status == 200, body
        return body if body["state"] in until else None

    found: dict[str, object] = wait_for(reached, timeout, f"run {run_id} to reach {until}")
    return found


def test_a_posted_run_is_followed_to_success_and_notified(stack: RunningStack, idle_dataset: str) -> None:
    created = post_run(stack, idle_dataset, seed=1)

    status = follow(stack, created["run_id"], ("COMPLETED", "FAILED", "CANCELLED"), 240)

    assert status["state"] == "COMPLETED", status
    assert status["summary"]["images_featurized"] == 60  # type: ignore[index]
    assert "accuracy" in status["metrics"]  # type: ignore[operator]
    message = notification(stack, created["run_id"])
    assert message["Subject"] == f"Featurizer run succeeded: {idle_dataset} (60 images)"
    assert len([run for run in stack.job_runs(idle_dataset) if run["name"] == created["run_id"]]) == 1


def test_cancelling_a_running_run_ends_cancelled(stack: RunningStack, idle_dataset: str) -> None:
    created = post_run(stack, idle_dataset, seed=2)
    follow(stack, created["run_id"], ("RUNNING",), 60)

    status, body = stack.api("DELETE", f"/runs/{created['run_id']}")

    assert (status, body["state"]) == (202, "CANCELLING")
    assert follow(stack, created["run_id"], ("CANCELLED",), 60)["state"] == "CANCELLED"
    assert "was CANCELLED" in notification(stack, created["run_id"])["Message"]


@pytest.fixture
def unreadable_model(stack: RunningStack) -> Iterator[None]:
    s3 = stack.client("s3")
    model = s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=MODEL_KEY)["Body"].read()
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=MODEL_KEY, Body=b"not an ONNX model")
    try:
        yield
    finally:
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=MODEL_KEY, Body=model)


def test_a_failing_job_ends_failed_notifies_and_writes_no_completed_flag(
    stack: RunningStack, idle_dataset: str, unreadable_model: None
) -> None:
    created = post_run(stack, idle_dataset, seed=3)

    status = follow(stack, created["run_id"], ("COMPLETED", "FAILED", "CANCELLED"), 180)

    assert status["state"] == "FAILED", status
    assert status["emr"]["state"] == "FAILED"  # type: ignore[index]
    message = notification(stack, created["run_id"])
    assert message["Subject"].startswith("Featurizer run failed:")
    key = f"runs/{idle_dataset}/{created['run_id']}/_COMPLETED.json"
    listed = stack.client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=key)
    assert listed["KeyCount"] == 0
