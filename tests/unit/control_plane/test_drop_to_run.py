"""Drop-to-run handlers fed SQS batches of S3 events, schedule ticks and EMR state changes, against local AWS.

QUIET_SECONDS is the template's default, and batches are as large as its uploads event source makes them.
Times come from the events, so the tests move time forward by sending later events, as AWS would, instead of
sleeping.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from local.template import load_template
from tests.paths import EVENTS_DIR

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

T0 = 1795514400.0  # 2026-11-24T10:00:00Z
TEMPLATE = load_template()
QUIET = int(TEMPLATE["Parameters"]["QuietSeconds"]["Default"])
BATCH = int(TEMPLATE["Resources"]["UploadsEventSource"]["Properties"]["BatchSize"])


def deliver(handlers: dict[str, Any], events: Any, context: Any, bodies: list[str]) -> None:
    """Feed message bodies to the uploads handler in SQS-sized batches; no message may fail."""
    for start in range(0, len(bodies), BATCH):
        response = handlers["UploadsFunction"](events.sqs(bodies[start : start + BATCH]), context)
        assert response == {"batchItemFailures": []}


def tick(handlers: dict[str, Any], events: Any, context: Any, at: float, dataset: str) -> list[str]:
    """One sweep at ``at``; the run ids it started for ``dataset`` (other tests' datasets share the table)."""
    result: dict[str, Any] = handlers["SweepFunction"](events.scheduled(at), context)
    assert result["errors"] == []
    return [run_id for run_id in result["started"] if run_id.startswith(f"{dataset}-")]


def test_ten_thousand_object_created_events_start_exactly_one_run(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str
) -> None:
    rng = random.Random(7)
    template = events.s3_object_created(f"inbox/{dataset}/x.jpg", T0)
    uploads = []
    for i in range(10_000):
        event = json.loads(json.dumps(template))
        event["id"] = f"{i:08d}-05d4-b198-2fde-7ededc63b103"
        event["time"] = (
            f"2026-11-24T10:{i * 90 // 10_000 // 60:02d}:{i * 90 // 10_000 % 60:02d}Z"  # 90 s upload
        )
        event["detail"]["object"]["key"] = f"inbox/{dataset}/Training/class_{i % 7}/img_{i:05d}.jpg"
        uploads.append(json.dumps(event))
    duplicates = rng.sample(uploads, 700)  # S3 and EventBridge deliver at least once
    bodies = uploads + duplicates
    rng.shuffle(bodies)
    last_upload = T0 + 89

    deliver(handlers, events, context, bodies[:5_000])
    assert tick(handlers, events, context, last_upload + 10, dataset) == []  # uploads still arriving
    deliver(handlers, events, context, bodies[5_000:])
    assert tick(handlers, events, context, last_upload + QUIET - 1, dataset) == []
    assert local_aws.job_runs(dataset) == []

    started = tick(handlers, events, context, last_upload + QUIET, dataset)
    assert len(started) == 1
    assert started[0].startswith(f"{dataset}-20261124T100329-")

    # late redeliveries of the same events, and more ticks, start nothing more
    deliver(handlers, events, context, duplicates)
    for minute in range(1, 4):
        assert tick(handlers, events, context, last_upload + QUIET + 60 * minute, dataset) == []
    runs = local_aws.job_runs(dataset)
    assert [run["name"] for run in runs] == started
    job = local_aws.client("emr-serverless").get_job_run(
        applicationId=local_aws.application_id, jobRunId=runs[0]["id"]
    )["jobRun"]
    arguments = job["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    assert arguments[:6] == [
        "--input", f"s3://featurizer-data/inbox/{dataset}/",
        "--output", f"s3://featurizer-data/runs/{dataset}/",
        "--run-id", started[0],
    ]  # fmt: skip


def test_start_marker_runs_at_once_and_images_arriving_mid_run_make_a_later_run(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str
) -> None:
    first_drop = [events.s3_object_created(f"inbox/{dataset}/img_{i}.jpg", T0 + i / 10) for i in range(20)]
    marker = events.s3_object_created(f"inbox/{dataset}/_START", T0 + 3)
    batch = [json.dumps(e) for e in [*first_drop[:12], marker, *first_drop[12:]]]  # SQS does not keep order
    deliver(handlers, events, context, batch)

    runs = local_aws.job_runs(dataset)
    assert len(runs) == 1, "the _START marker starts the run without waiting for the quiet period"
    first_run = runs[0]

    # duplicates of the first drop arrive after the run started: covered by it
    deliver(handlers, events, context, batch[:5])
    # three images arrive while the run is in progress: no second run while it runs...
    late = [events.s3_object_created(f"inbox/{dataset}/late_{i}.jpg", T0 + 60 + i) for i in range(3)]
    deliver(handlers, events, context, [json.dumps(e) for e in late])
    assert tick(handlers, events, context, T0 + 62 + QUIET + 30, dataset) == []
    assert len(local_aws.job_runs(dataset)) == 1

    # ...and when it ends, the next sweep starts one for them (they are not lost); the release itself does
    # not, as it does not read the uploads queue's backlog
    ended = events.emr_state_change(first_run["id"], "SUCCESS", T0 + 900, local_aws.application_id)
    assert handlers["RunEndedFunction"](ended, context) == {"released": True, "next_run_id": None}
    (next_run_id,) = tick(handlers, events, context, T0 + 960, dataset)
    runs = local_aws.job_runs(dataset)
    assert len(runs) == 2
    assert next_run_id == next(r["name"] for r in runs if r["id"] != first_run["id"])
    assert next_run_id > first_run["name"]  # run ids sort by time

    # the second run ends with nothing new waiting: no third run
    second = next(r for r in runs if r["id"] != first_run["id"])
    failed = events.emr_state_change(second["id"], "FAILED", T0 + 1800, local_aws.application_id, "boom")
    assert handlers["RunEndedFunction"](failed, context)["next_run_id"] is None
    assert tick(handlers, events, context, T0 + 3600, dataset) == []
    assert len(local_aws.job_runs(dataset)) == 2


def test_s3_notification_records_with_url_encoded_keys(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any
) -> None:
    """tests/events/sqs_s3_notification_records.json as delivered: S3 -> SQS records, keys URL-encoded."""
    from drop_to_run.events import UploadsQueueRecord, uploads_in

    event = events.load("sqs_s3_notification_records.json")
    uploads = uploads_in(UploadsQueueRecord.model_validate(event["Records"][0]).body)
    assert [u.key for u in uploads] == [
        "inbox/flowers/Test/Red Rose/red flower (1).jpg",
        "inbox/flowers/_START",
    ]
    assert [u.is_start_marker for u in uploads] == [False, True]

    assert handlers["UploadsFunction"](event, context) == {"batchItemFailures": []}
    started = local_aws.job_runs("flowers-20261124T100004-")
    assert len(started) == 1


def test_eventbridge_fixture_is_recorded_and_junk_is_reported(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str
) -> None:
    event = events.load("sqs_eventbridge_s3_object_created.json")
    body = event["Records"][0]["body"].replace("inbox/flowers/", f"inbox/{dataset}/")
    good = events.sqs([body])["Records"][0]
    junk = events.sqs(["this is not an S3 event"])["Records"][0]
    response = handlers["UploadsFunction"]({"Records": [good, junk]}, context)
    assert response == {"batchItemFailures": [{"itemIdentifier": junk["messageId"]}]}

    item = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"dataset#{dataset}"}}, ConsistentRead=True
    )["Item"]
    assert item["pending"] == {"BOOL": True}
    assert item["sweep"] == {"S": "DUE"}
    assert float(item["due_at"]["N"]) == T0 + QUIET


def test_objects_outside_dataset_folders_are_ignored(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any
) -> None:
    bodies = [
        json.dumps(events.s3_object_created(key, T0))
        for key in (
            "inbox/loose-file.jpg",
            "inbox/has space/x.jpg",
            "inbox/newline\n/x.jpg",
            "inbox/folder-only/",
            "inbox/selftest-20261124T100000/Banana/1.jpg",
            "runs/x/y.json",
        )
    ]
    deliver(handlers, events, context, bodies)
    for name in (
        "loose-file.jpg",
        "has space",
        "newline\n",
        "newline",
        "folder-only",
        "selftest-20261124T100000",
        "x",
    ):
        assert tick(handlers, events, context, T0 + 3600, name) == []
        item = local_aws.client("dynamodb").get_item(
            TableName=local_aws.table_name, Key={"pk": {"S": f"dataset#{name}"}}
        )
        assert "Item" not in item


def test_a_run_emr_refuses_is_retried_then_reported(
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

    attempts: list[str] = []

    def refuse(run: Any) -> dict[str, str]:
        attempts.append(run.run_id)
        raise RunStartError(f"EMR Serverless refused to start run {run.run_id}: ValidationException")

    monkeypatch.setattr(app.service, "launch", refuse)
    marker = events.s3_object_created(f"inbox/{dataset}/_START", T0)
    deliver(handlers, events, context, [json.dumps(marker)])
    assert len(attempts) == 1
    for minutes in (3, 4, 5):
        tick(handlers, events, context, T0 + 60 * minutes, dataset)
    assert len(attempts) == 3
    assert len(set(attempts)) == 1, "retries reuse the run id, so EMR's clientToken is the same"

    messages = sns_inbox()
    assert len(messages) == 1
    assert messages[0]["Subject"] == f"Featurizer run could not start: {dataset}"
    assert "ValidationException" in messages[0]["Message"]
    assert f"upload inbox/{dataset}/_START to try again" in messages[0]["Message"]
    assert local_aws.job_runs(dataset) == []


def test_a_dataset_whose_state_cannot_be_written_fails_only_its_own_messages(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drop_to_run import app

    broken, healthy = f"{dataset}-a", f"{dataset}-b"
    record = app.service.record

    def contended(name: str, uploads: list[Any]) -> Any:
        if name == broken:
            raise ConnectionError("DynamoDB is unavailable")
        return record(name, uploads)

    monkeypatch.setattr(app.service, "record", contended)
    keys = [f"inbox/{broken}/Banana/1.jpg", f"inbox/{broken}/Banana/2.jpg", f"inbox/{healthy}/Kiwi/1.jpg"]
    batch = events.sqs([json.dumps(events.s3_object_created(key, T0)) for key in keys])

    response = handlers["UploadsFunction"](batch, context)

    failed = [r["messageId"] for r in batch["Records"][:2]]
    assert response == {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
    item = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"dataset#{healthy}"}}, ConsistentRead=True
    )
    assert item["Item"]["pending"] == {"BOOL": True}


def test_a_backlog_in_the_uploads_queue_starts_no_run_until_it_is_drained(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 20: uploads went in faster than the uploads function drained them, so the recorded events went
    quiet while most of the drop still waited in the queue, and a run started on a part of it."""
    from drop_to_run import app
    from drop_to_run.backlog import WATERMARK_KEY

    sqs = local_aws.client("sqs")
    # Received messages stay hidden for the whole test (SQS's default is 30 s: a slow machine would read some
    # twice).
    queue = sqs.create_queue(QueueName=f"uploads-{dataset}", Attributes={"VisibilityTimeout": "3600"})
    queue_url = queue["QueueUrl"]
    monkeypatch.setattr(app.backlog, "queue_url", queue_url)
    app.backlog.table.delete_item(Key=WATERMARK_KEY)  # other tests' batches may have recorded later times
    t0 = time.time()
    drop = [
        json.dumps(events.s3_object_created(f"inbox/{dataset}/Banana/{i}.jpg", t0 + i)) for i in range(600)
    ]  # ten minutes of uploads, one a second, of which the uploads function has recorded half a minute
    assert handlers["UploadsFunction"](events.sqs(drop[:30], sent_at=t0 + 29), context) == {
        "batchItemFailures": []
    }
    for start in range(30, len(drop), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(drop[start : start + 10])]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)

    assert tick(handlers, events, context, t0 + 29 + QUIET, dataset) == []  # quiet as far as recorded
    assert tick(handlers, events, context, t0 + 599 + QUIET, dataset) == []  # but the rest is unread

    received = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        received += batch
    assert len(received) == 570
    assert tick(handlers, events, context, t0 + 599 + QUIET, dataset) == []  # in the function, unrecorded
    deliver(handlers, events, context, [message["Body"] for message in received])
    for start in range(0, len(received), 10):
        entries = [
            {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in received[start : start + 10]
        ]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)

    assert tick(handlers, events, context, t0 + 599 + QUIET - 1, dataset) == []
    assert len(tick(handlers, events, context, t0 + 599 + QUIET, dataset)) == 1
    assert len(local_aws.job_runs(dataset)) == 1


def test_a_backlog_that_cannot_be_read_holds_quiet_uploads_and_nothing_else(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from common.errors import RunStartError
    from drop_to_run import app

    refused, quiet = f"{dataset}-a", f"{dataset}-b"
    launch = app.service.launch
    attempts: list[str] = []

    def refuse_one(run: Any) -> dict[str, str]:
        if run.dataset != refused:
            return launch(run)
        attempts.append(run.run_id)
        raise RunStartError(f"EMR Serverless refused to start run {run.run_id}: ValidationException")

    monkeypatch.setattr(app.service, "launch", refuse_one)
    bodies = [
        json.dumps(events.s3_object_created(f"inbox/{refused}/_START", T0)),
        json.dumps(events.s3_object_created(f"inbox/{quiet}/Kiwi/1.jpg", T0)),
    ]
    deliver(handlers, events, context, bodies)
    assert len(attempts) == 1
    monkeypatch.setattr(app.backlog, "queue_url", app.backlog.queue_url + "-deleted")
    capsys.readouterr()

    assert tick(handlers, events, context, T0 + 180, quiet) == []
    assert len(attempts) == 2, "the refused run is still retried"
    assert '"SweepErrors":[1.0]' in capsys.readouterr().out

    monkeypatch.undo()
    assert len(tick(handlers, events, context, T0 + 240, quiet)) == 1


def _run_output(local_aws: Any, dataset: str, run_id: str, **summary: Any) -> None:
    """A completed run's flag under runs/<dataset>/<run_id>/ (the fixture's, with ``summary`` over it)."""
    completed = json.loads((EVENTS_DIR / "run_output" / "_COMPLETED.json").read_text())
    completed["summary"] |= summary
    local_aws.client("s3").put_object(
        Bucket="featurizer-data", Key=f"runs/{dataset}/{run_id}/_COMPLETED.json", Body=json.dumps(completed)
    )


def _arguments(local_aws: Any, job_run_id: str) -> list[str]:
    job = local_aws.client("emr-serverless").get_job_run(
        applicationId=local_aws.application_id, jobRunId=job_run_id
    )["jobRun"]
    arguments: list[str] = job["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    return arguments


def test_a_prediction_batch_is_its_own_drop_and_predicts_with_the_newest_trained_run(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str
) -> None:
    """Issue 23: images dropped into inbox/<dataset>/_predict/<batch>/ start a predict run of that batch with
    the dataset's newest completed run that trained a classifier, apart from the dataset's own runs."""
    data = "s3://featurizer-data"
    older, trained, predicted, failed = (f"{dataset}-20261123T0{h}0000-0000000{h}" for h in range(4))
    _run_output(local_aws, dataset, older)
    _run_output(local_aws, dataset, trained)
    _run_output(local_aws, dataset, predicted, model_run=f"{data}/runs/{dataset}/{older}/")
    s3 = local_aws.client("s3")
    s3.put_object(
        Bucket="featurizer-data", Key=f"runs/{dataset}/{failed}/_FAILED.json", Body=b"{}"
    )  # no flag
    forged = f"{dataset}-20261123T090000-00000009"  # newest, but its flag is not the job's: skipped
    s3.put_object(Bucket="featurizer-data", Key=f"runs/{dataset}/{forged}/_COMPLETED.json", Body=b"[not json")
    s3.put_object(Bucket="featurizer-data", Key=f"runs/{dataset}/_store/manifest.json", Body=b"{}")  # no run
    batch = f"inbox/{dataset}/_predict/week-49"
    keys = [f"{batch}/img_{i}.jpg" for i in range(5)] + [f"{batch}/Banana/b.jpg", f"{batch}/_START"]
    keys += [f"inbox/{dataset}/_predict/loose.jpg", f"inbox/{dataset}/Banana/new.jpg"]
    deliver(handlers, events, context, [json.dumps(events.s3_object_created(k, T0 + 1)) for k in keys])

    (run,) = local_aws.job_runs(dataset)  # the batch's marker started it; the dataset's image waits
    arguments = _arguments(local_aws, run["id"])
    assert arguments[arguments.index("--input") + 1] == f"{data}/{batch}/"
    assert arguments[arguments.index("--output") + 1] == f"{data}/runs/{dataset}/"
    assert arguments[arguments.index("--model-run") + 1] == f"{data}/runs/{dataset}/{trained}/"
    state = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"dataset#{dataset}/_predict/week-49"}}
    )["Item"]
    assert state["run_id"] == {"S": run["name"]}

    (training,) = tick(handlers, events, context, T0 + 1 + QUIET, dataset)  # the dataset's own, quiet
    assert _arguments(local_aws, next(r["id"] for r in local_aws.job_runs(training)))[:2] == [
        "--input", f"{data}/inbox/{dataset}/",
    ]  # fmt: skip

    # the batch is released when its run ends: an image added later starts the batch's next run
    ended = events.emr_state_change(run["id"], "SUCCESS", T0 + 600, local_aws.application_id)
    assert handlers["RunEndedFunction"](ended, context)["released"] is True
    late = events.s3_object_created(f"{batch}/img_late.jpg", T0 + 700)
    deliver(handlers, events, context, [json.dumps(late)])
    (again,) = tick(handlers, events, context, T0 + 700 + QUIET, dataset)
    arguments = _arguments(local_aws, next(r["id"] for r in local_aws.job_runs(again)))
    assert arguments[arguments.index("--input") + 1] == f"{data}/{batch}/"


def test_a_prediction_batch_of_a_dataset_with_no_trained_run_is_retried_then_reported(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, sns_inbox: Any
) -> None:
    marker = events.s3_object_created(f"inbox/{dataset}/_predict/b1/_START", T0)
    deliver(handlers, events, context, [json.dumps(marker)])
    for minutes in (3, 4, 5):
        tick(handlers, events, context, T0 + 60 * minutes, dataset)
    assert local_aws.job_runs(dataset) == []
    (message,) = sns_inbox()
    assert message["Subject"] == f"Featurizer run could not start: {dataset}/_predict/b1"
    assert f'prediction batch "b1" of dataset "{dataset}"' in message["Message"]
    assert "that trained a classifier" in message["Message"] and "predict_with" in message["Message"]
    assert f"upload inbox/{dataset}/_predict/b1/_START to try again" in message["Message"]


def test_the_end_of_an_api_run_on_any_folder_of_a_dataset_releases_nothing_and_fails_nothing(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, inbox: str
) -> None:
    """An API run's input may be any folder under the dataset's (here Training/): it holds no drop unit."""
    from tests.unit.control_plane.test_api import call

    body = json.dumps({"input": f"{inbox}Training/"})
    status, created, _ = call(handlers, events.api("POST", "/runs", body), context)
    assert status == 202, created
    ended = events.emr_state_change(created["jobRunId"], "SUCCESS", T0 + 600, local_aws.application_id)
    assert handlers["RunEndedFunction"](ended, context) == {"released": True, "next_run_id": None}
