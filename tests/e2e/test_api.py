"""The HTTP API on the local stack: POST /runs, GET /runs/{id} to the end, DELETE /runs/{id}."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from featurizer.remote import main as remote
from local.stack import StackOptions
from local.template import ARTIFACTS_BUCKET, DATA_BUCKET
from tests.e2e.stack import RunningStack, notification, wait_for

MODEL_KEY = "models/featurizer-model.onnx"  # template.yaml's ModelKey default
CORES = StackOptions().spark_cores  # what the local EMR's spark-submit runs on


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


def remote_wait(stack: RunningStack, run_id: str, timeout: float) -> tuple[int, str]:
    """`featurizer remote wait` on the local stack's API: its exit code and what it printed."""
    out = io.StringIO()
    code = remote(
        ["--api", stack.endpoints["api"], "wait", run_id, "--interval", "2", "--timeout", str(timeout)], out
    )
    return code, out.getvalue()


def test_a_posted_run_is_followed_to_success_and_notified(stack: RunningStack, idle_dataset: str) -> None:
    created = post_run(stack, idle_dataset, seed=1)

    code, printed = remote_wait(stack, created["run_id"], 240)

    assert code == 0, printed
    last = printed.splitlines()[-1]  # once EMR has billed the job run, which ends after the flag
    assert last.startswith(f"{created['run_id']}: COMPLETED") and "images_found 60" in last
    assert "(an estimate; planned at most $" in last, printed
    status = follow(stack, created["run_id"], ("COMPLETED",), 10)
    assert status["summary"]["images_featurized"] == 60  # type: ignore[index]
    assert "accuracy" in status["metrics"]  # type: ignore[operator]
    message = notification(stack, created["run_id"])
    assert message["Subject"] == f"Featurizer run succeeded: {idle_dataset} (60 images)"
    assert "\nCost:               $" in message["Message"]  # sent once EMR ended the job run, and billed it
    assert "(an estimate from the local stack's measured resources: " in message["Message"]
    assert len([run for run in stack.job_runs(idle_dataset) if run["name"] == created["run_id"]]) == 1

    assert_cost_is_the_measured_hours_priced(stack, created["run_id"])

    predicted = predict_with(stack, idle_dataset, created["run_id"])
    assert predicted["summary"]["images_classified"] == 60  # type: ignore[index]
    assert predicted["summary"]["images_scored"] == 60  # type: ignore[index]
    key = f"runs/{idle_dataset}/{predicted['run_id']}/predictions.csv"
    table = stack.client("s3").get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == len({row["image_id"] for row in rows}) == 60
    assert all(row["predicted_label"] == row["label_1"] for row in rows)

    out = io.StringIO()  # `remote list`: the caller's runs, newest first, with what they predicted with
    assert remote(["--api", stack.endpoints["api"], "list", "--all"], out) == 0
    listed = {line.split()[0]: (number, line) for number, line in enumerate(out.getvalue().splitlines())}
    (newest, line), (trained, _) = listed[str(predicted["run_id"])], listed[created["run_id"]]
    assert newest < trained
    assert line.endswith(f"  SUCCESS  api predict_with {created['run_id']}")


def assert_cost_is_the_measured_hours_priced(stack: RunningStack, run_id: str) -> None:
    """Issue 23: once the job run has ended, GET /runs/<id> gives its cost, from the emulator's measured
    resources (an estimate): the cores it held for its duration, priced as the deployment says."""

    def billed() -> dict[str, Any] | None:
        _, body = stack.api("GET", f"/runs/{run_id}")
        return body if "cost" in body else None

    cost = wait_for(billed, 60, f"run {run_id}'s cost")["cost"]
    prices = cost["prices"]
    assert cost["estimate"] is True and cost["architecture"] == "x86_64"
    assert cost["vcpu_hours"] == pytest.approx(CORES * cost["duration_seconds"] / 3600, abs=CORES / 3600)
    assert cost["memory_gb_hours"] > 0 and cost["storage_gb_hours"] == 0
    assert cost["planned_usd"] > 0  # the plan of the 60 images counted at the start, for EMR's workers
    assert cost["usd"] == pytest.approx(
        cost["vcpu_hours"] * prices["vcpu_hour"] + cost["memory_gb_hours"] * prices["gb_hour"], abs=1e-6
    )


def predict_with(stack: RunningStack, dataset: str, trained: str) -> dict[str, object]:
    """Issue 23: `remote start --predict-with --wait` classifies the dataset's images with the trained run's
    pipeline (every image is in the feature store already: no CNN) and exits 0 once it completed."""
    out = io.StringIO()
    argv = ["--api", stack.endpoints["api"], "start", "--input", f"s3://{DATA_BUCKET}/inbox/{dataset}/"]
    code = remote([*argv, "--predict-with", trained, "--wait", "--interval", "2", "--timeout", "180"], out)
    assert code == 0, out.getvalue()
    (line,) = [line for line in out.getvalue().splitlines() if '"run_id"' in line]
    return follow(stack, line.split('"')[3], ("COMPLETED",), 10)


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

    code, printed = remote_wait(stack, created["run_id"], 180)

    assert code == 1, printed
    assert f"{created['run_id']}: FAILED" in printed.splitlines()[-1]
    status = follow(stack, created["run_id"], ("FAILED",), 10)
    assert status["emr"]["state"] == "FAILED"  # type: ignore[index]
    message = notification(stack, created["run_id"])
    assert message["Subject"].startswith("Featurizer run failed:")
    key = f"runs/{idle_dataset}/{created['run_id']}/_COMPLETED.json"
    listed = stack.client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=key)
    assert listed["KeyCount"] == 0
