"""The reconciler fed schedule ticks, against local AWS: runs whose end events were lost are released and
reported once, a notice whose publish failed is sent later, and late events add nothing.

Run records are stamped with the clock (their next check is RECONCILE_INTERVAL_SECONDS after the start), so
the ticks here are at clock time; the drop-to-run handlers take their times from the events, as elsewhere.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from common import records
from drop_to_run.debounce import LEASE_MARGIN_SECONDS
from tests.unit.control_plane.test_notify import write_output

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

OUTPUTS = ["manifest.json", "metrics.json", "timings.json", "_COMPLETED.json"]


def reconcile(handlers: dict[str, Any], events: Any, context: Any, at: float) -> dict[str, str]:
    result: dict[str, Any] = handlers["ReconcileFunction"](events.scheduled(at), context)
    assert result["errors"] == []
    return dict(result["reconciled"])


def later() -> float:
    """A tick at which every run recorded so far is due."""
    return time.time() + records.RECONCILE_INTERVAL_SECONDS + 1


def mine(messages: list[dict[str, str]], dataset: str) -> list[dict[str, str]]:
    """The messages about this test's dataset (runs of other tests share the table and may be due too)."""
    return [m for m in messages if dataset in m["Subject"]]


def start_api_run(local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str) -> Any:
    local_aws.client("s3").put_object(
        Bucket="featurizer-data", Key=f"inbox/{dataset}/Training/Banana/b1.jpg", Body=b"jpeg"
    )
    body = json.dumps({"input": f"s3://featurizer-data/inbox/{dataset}/"})
    response = handlers["ApiFunction"](events.api("POST", "/runs", body), context)
    assert response["statusCode"] == 202, response["body"]
    return json.loads(response["body"])


def is_open(local_aws: Any, run_id: str) -> bool:
    item = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"run#{run_id}"}}, ConsistentRead=True
    )["Item"]
    return "sweep" in item


def test_a_drop_run_whose_end_events_were_lost_is_released_and_reported_once_at_its_lease(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, sns_inbox: Any
) -> None:
    from drop_to_run import app

    t0 = time.time()
    marker = events.s3_object_created(f"inbox/{dataset}/_START", t0)
    handlers["UploadsFunction"](events.sqs([json.dumps(marker)]), context)
    (job,) = local_aws.job_runs(dataset)
    late = events.s3_object_created(f"inbox/{dataset}/late.jpg", t0 + 60)  # arrives during the run
    handlers["UploadsFunction"](events.sqs([json.dumps(late)]), context)
    local_aws.set_job_state(job["id"], "RUNNING")
    assert reconcile(handlers, events, context, later()).get(job["name"]) == "RUNNING"
    assert is_open(local_aws, job["name"])

    # the job succeeds; neither its _COMPLETED.json event nor EMR's state change ever arrives
    write_output(local_aws, dataset, job["name"], OUTPUTS)
    local_aws.set_job_state(job["id"], "SUCCESS")
    lease_due = t0 + app.service.lease_seconds
    handlers["SweepFunction"](events.scheduled(lease_due), context)
    assert len(local_aws.job_runs(dataset)) == 1, "the dataset is not released unchecked"
    assert reconcile(handlers, events, context, lease_due).get(job["name"]) == "SUCCESS"

    (message,) = mine(sns_inbox(), dataset)
    assert message["Subject"] == f"Featurizer run succeeded: {dataset} (1297 images)"
    handlers["SweepFunction"](events.scheduled(lease_due + 60), context)
    runs = local_aws.job_runs(dataset)
    assert len(runs) == 2, "the released dataset starts its next run for the image that arrived meanwhile"
    assert not is_open(local_aws, job["name"])
    local_aws.set_job_state(next(r["id"] for r in runs if r["id"] != job["id"]), "RUNNING")

    # the lost events turn up after all, and the reconciler passes again: nothing more is sent
    flag = events.s3_object_created(f"runs/{dataset}/{job['name']}/_COMPLETED.json", lease_due)
    handlers["NotifyFunction"](flag, context)
    ended = events.emr_state_change(job["id"], "SUCCESS", lease_due, local_aws.application_id)
    handlers["NotifyFunction"](ended, context)
    handlers["RunEndedFunction"](ended, context)
    reconcile(handlers, events, context, lease_due + LEASE_MARGIN_SECONDS)
    assert mine(sns_inbox(), dataset) == []
    assert len(local_aws.job_runs(dataset)) == 2


def test_a_run_cancelled_at_its_timeout_is_reported_without_a_failed_flag(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, sns_inbox: Any
) -> None:
    created = start_api_run(local_aws, handlers, events, context, dataset)
    local_aws.set_job_state(created["jobRunId"], "CANCELLED", "Job run timed out after 120 minutes")
    assert reconcile(handlers, events, context, later())[created["run_id"]] == "CANCELLED"

    (message,) = mine(sns_inbox(), dataset)
    assert message["Subject"] == f"Featurizer run was cancelled: {dataset} ({created['run_id']})"
    assert "Reason: Job run timed out after 120 minutes" in message["Message"]
    assert not is_open(local_aws, created["run_id"])
    assert created["run_id"] not in reconcile(handlers, events, context, later())


def test_a_notice_whose_publish_failed_is_sent_by_the_next_pass(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    sns_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notify import app as notify_app

    created = start_api_run(local_aws, handlers, events, context, dataset)
    local_aws.set_job_state(created["jobRunId"], "FAILED", "Job failed: OutOfMemoryError")
    failed = events.emr_state_change(
        created["jobRunId"], "FAILED", time.time(), local_aws.application_id, "Job failed: OutOfMemoryError"
    )

    def unavailable(**kwargs: Any) -> None:
        raise ConnectionError("SNS is unavailable")

    monkeypatch.setattr(notify_app.sns, "publish", unavailable)
    for _ in range(3):  # Lambda's two retries, then the event goes to the dead-letter queue
        with pytest.raises(ConnectionError):
            handlers["NotifyFunction"](failed, context)
    monkeypatch.undo()
    assert mine(sns_inbox(), dataset) == []
    assert is_open(local_aws, created["run_id"])

    assert reconcile(handlers, events, context, later())[created["run_id"]] == "FAILED"
    (message,) = mine(sns_inbox(), dataset)
    assert "Reason: Job failed: OutOfMemoryError" in message["Message"]
    assert not is_open(local_aws, created["run_id"])


def test_a_run_still_running_is_checked_again_later_and_a_failed_check_stays_due(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    sns_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconcile import app as reconcile_app

    created = start_api_run(local_aws, handlers, events, context, dataset)
    run_id = created["run_id"]
    local_aws.set_job_state(created["jobRunId"], "RUNNING")
    first = later()
    assert reconcile(handlers, events, context, first)[run_id] == "RUNNING"
    assert run_id not in reconcile(handlers, events, context, first + 1), "not due again before its interval"

    def throttled(**kwargs: Any) -> None:
        raise ConnectionError("EMR Serverless is unavailable")

    second = first + records.RECONCILE_INTERVAL_SECONDS
    monkeypatch.setattr(reconcile_app.emr, "get_job_run", throttled)
    result = handlers["ReconcileFunction"](events.scheduled(second), context)
    assert run_id in result["errors"]
    monkeypatch.undo()
    local_aws.set_job_state(created["jobRunId"], "SUCCESS")
    write_output(local_aws, dataset, run_id, OUTPUTS)
    assert reconcile(handlers, events, context, second)[run_id] == "SUCCESS"
    (message,) = mine(sns_inbox(), dataset)
    assert message["Subject"].startswith(f"Featurizer run succeeded: {dataset}")


def test_a_could_not_start_notice_whose_publish_failed_is_sent_by_the_next_sweep(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    sns_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from common.errors import RunStartError
    from drop_to_run import app

    def refuse(run: Any) -> dict[str, str]:
        raise RunStartError(f"EMR Serverless refused to start run {run.run_id}: ValidationException")

    def unavailable(notice: Any) -> None:
        raise ConnectionError("SNS is unavailable")

    publish = app.service.publish
    monkeypatch.setattr(app.service, "launch", refuse)
    monkeypatch.setattr(app.service, "publish", unavailable)
    t0 = time.time()
    handlers["UploadsFunction"](
        events.sqs([json.dumps(events.s3_object_created(f"inbox/{dataset}/_START", t0))]), context
    )
    for minutes in (3, 4, 5):  # two relaunches, then the give-up, whose notice cannot be published
        handlers["SweepFunction"](events.scheduled(t0 + 60 * minutes), context)
    assert mine(sns_inbox(), dataset) == []

    monkeypatch.setattr(app.service, "publish", publish)
    handlers["SweepFunction"](events.scheduled(t0 + 60 * 6), context)
    handlers["SweepFunction"](events.scheduled(t0 + 60 * 7), context)
    (message,) = mine(sns_inbox(), dataset)
    assert message["Subject"] == f"Featurizer run could not start: {dataset}"
    assert "ValidationException" in message["Message"]


def test_an_api_run_and_a_drop_run_of_one_dataset_run_side_by_side(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, sns_inbox: Any
) -> None:
    """Documented concurrency (docs/control-plane.md): an API run does not wait for, claim or release the
    dataset's drop run; each has its own run folder and its own e-mail."""
    t0 = time.time()
    handlers["UploadsFunction"](
        events.sqs([json.dumps(events.s3_object_created(f"inbox/{dataset}/_START", t0))]), context
    )
    (drop_job,) = local_aws.job_runs(dataset)
    created = start_api_run(local_aws, handlers, events, context, dataset)
    assert created["run_id"] != drop_job["name"]
    assert len(local_aws.job_runs(dataset)) == 2

    late = events.s3_object_created(f"inbox/{dataset}/late.jpg", t0 + 60)
    handlers["UploadsFunction"](events.sqs([json.dumps(late)]), context)
    local_aws.set_job_state(created["jobRunId"], "SUCCESS")
    api_ended = events.emr_state_change(created["jobRunId"], "SUCCESS", t0 + 600, local_aws.application_id)
    assert handlers["RunEndedFunction"](api_ended, context)["next_run_id"] is None, "the drop run still runs"
    assert len(local_aws.job_runs(dataset)) == 2

    local_aws.set_job_state(drop_job["id"], "FAILED", "boom")
    drop_ended = events.emr_state_change(drop_job["id"], "FAILED", t0 + 900, local_aws.application_id, "boom")
    assert handlers["RunEndedFunction"](drop_ended, context)["released"] is True
    handlers["SweepFunction"](events.scheduled(t0 + 960), context)  # the late image's run
    assert len(local_aws.job_runs(dataset)) == 3


def test_a_run_whose_close_failed_is_closed_and_a_notified_run_is_never_e_mailed_again(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, sns_inbox: Any
) -> None:
    """The last mark was written but closing the run failed; then, days later, a re-driven event (its
    idempotency record long expired) reports the run again: nothing is sent, the run is closed."""
    from notify import app as notify_app
    from notify.messages import Notice

    created = start_api_run(local_aws, handlers, events, context, dataset)
    local_aws.client("dynamodb").update_item(
        TableName=local_aws.table_name,
        Key={"pk": {"S": f"run#{created['run_id']}"}},
        UpdateExpression="SET notified_at = :now",
        ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
    )
    late = Notice(key=f"failed#{created['run_id']}", subject="s", message="m", run_id=created["run_id"])
    assert notify_app.publish(late)["message_id"] == ""
    local_aws.set_job_state(created["jobRunId"], "FAILED", "boom")
    assert reconcile(handlers, events, context, later())[created["run_id"]] == "FAILED"
    assert not is_open(local_aws, created["run_id"])
    assert mine(sns_inbox(), dataset) == []
