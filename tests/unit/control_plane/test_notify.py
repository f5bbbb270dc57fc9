"""The notify handler fed S3 "Object Created" and EMR Serverless state-change events, against local AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.paths import EVENTS_DIR

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

RUN_OUTPUT = EVENTS_DIR / "run_output"
FIXTURE_RUN = "flowers-20261124T100500-3f9a1c2e"
T_END = 1795515667.0  # 2026-11-24T10:21:07Z


@pytest.fixture
def run(local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str) -> dict[str, Any]:
    """A run started through the API (so its records exist), with the job run in RUNNING state."""
    s3 = local_aws.client("s3")
    s3.put_object(Bucket="featurizer-data", Key=f"inbox/{dataset}/Training/Banana/b1.jpg", Body=b"jpeg")
    body = json.dumps({"input": f"s3://featurizer-data/inbox/{dataset}/"})
    response = handlers["ApiFunction"](events.api("POST", "/runs", body), context)
    created: dict[str, Any] = json.loads(response["body"])
    local_aws.set_job_state(created["jobRunId"], "RUNNING")
    return created


def write_output(local_aws: Any, dataset: str, run_id: str, names: list[str]) -> None:
    """Write the run output files of tests/events/run_output/ as the job would, for this run."""
    s3 = local_aws.client("s3")
    for name in names:
        text = (RUN_OUTPUT / name).read_text()
        text = text.replace(FIXTURE_RUN, run_id).replace("runs/flowers/", f"runs/{dataset}/")
        s3.put_object(Bucket="featurizer-data", Key=f"runs/{dataset}/{run_id}/{name}", Body=text.encode())


def test_a_completed_run_s_message_comes_once_its_job_run_ended_with_the_real_counts_and_cost(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    run: dict[str, Any],
    sns_inbox: Any,
) -> None:
    run_id = run["run_id"]
    write_output(
        local_aws, dataset, run_id, ["manifest.json", "metrics.json", "timings.json", "_COMPLETED.json"]
    )
    flag = events.s3_object_created(f"runs/{dataset}/{run_id}/_COMPLETED.json", T_END)

    # the flag comes while the job run still runs: the message waits for EMR's end event, and its bill
    assert handlers["NotifyFunction"](flag, context) == {"published": None}
    billed = {"vCPUHour": 0.5, "memoryGBHour": 2.0, "storageGBHour": 0.0}
    local_aws.set_job_state(run["jobRunId"], "SUCCESS", billed=billed)
    success = events.emr_state_change(run["jobRunId"], "SUCCESS", T_END + 20, local_aws.application_id)
    result = handlers["NotifyFunction"](success, context)
    assert handlers["NotifyFunction"](flag, context)["published"] == result["published"]  # delivered again

    assert result["published"] == f"succeeded#{run_id}"
    messages = sns_inbox()
    assert len(messages) == 1
    assert messages[0]["Subject"] == f"Featurizer run succeeded: {dataset} (1297 images)"
    assert messages[0]["Message"] == (
        f'Run {run_id} for dataset "{dataset}" finished successfully.\n'
        "\n"
        "Images found:       1312\n"
        "Images featurized:  1297 (0 reused from earlier runs, 1297 new; 0 gone from the input since)\n"
        "Images rejected:    15  (listed in rejected.csv)\n"
        "Classes:            7 (train 1035, test 262; fitted on 1035)\n"
        "Accuracy:           96.4 %  (weighted F1 0.963)\n"
        "Duration:           12 min 34 s (754.3 s)\n"
        "Cost:               $0.0379 (billed: 0.500 vCPU-h, 2.000 GB-h; planned at most $0.0521)\n"
        "Finished at:        2026-11-24T10:21:07+00:00\n"
        "\n"
        f"Report: s3://featurizer-data/runs/{dataset}/{run_id}/report.html\n"
        "  open it from the S3 console: "
        f"https://s3.console.aws.amazon.com/s3/object/featurizer-data?prefix=runs/{dataset}/{run_id}/report.html\n"
        "\n"
        f"Outputs: s3://featurizer-data/runs/{dataset}/{run_id}/\n"
        "  features/ and pca/ (Parquet), pca.csv, model/ (Spark PipelineModel),\n"
        "  metrics.json, timings.json, manifest.json, rejected.csv\n"
        f"Browse: https://s3.console.aws.amazon.com/s3/buckets/featurizer-data?prefix=runs/{dataset}/{run_id}/\n"
    )


def test_counts_come_from_the_manifest(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str, run: dict[str, Any],
    sns_inbox: Any,
) -> None:  # fmt: skip
    run_id = run["run_id"]
    write_output(local_aws, dataset, run_id, ["metrics.json", "timings.json", "_COMPLETED.json"])
    manifest = json.loads((RUN_OUTPUT / "manifest.json").read_text())
    manifest["counts"].update(
        images_found=40,
        images_featurized=37,
        images_rejected=3,
        images_reused=30,
        images_featurized_new=7,
        images_removed=2,
    )
    local_aws.client("s3").put_object(
        Bucket="featurizer-data",
        Key=f"runs/{dataset}/{run_id}/manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    local_aws.set_job_state(run["jobRunId"], "SUCCESS")
    handlers["NotifyFunction"](
        events.s3_object_created(f"runs/{dataset}/{run_id}/_COMPLETED.json", T_END), context
    )
    (message,) = sns_inbox()
    assert (
        "Images featurized:  37 (30 reused from earlier runs, 7 new; 2 gone from the input since)\n"
        in (message["Message"])
    )
    assert "Images rejected:    3  (listed in rejected.csv)\n" in message["Message"]


def test_failed_state_change_publishes_the_reason_and_the_log_location(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    run: dict[str, Any],
    sns_inbox: Any,
) -> None:
    fixture = events.load("emr_job_run_state_change_failed.json")
    fixture["detail"].update(jobRunId=run["jobRunId"], applicationId=local_aws.application_id)
    local_aws.set_job_state(run["jobRunId"], "FAILED", fixture["detail"]["stateDetails"])

    result = handlers["NotifyFunction"](fixture, context)

    assert result["published"] == f"failed#{run['run_id']}"
    (message,) = sns_inbox()
    assert message["Subject"] == f"Featurizer run failed: {dataset} ({run['run_id']})"
    text = message["Message"]
    assert text.startswith(
        f'Run {run["run_id"]} for dataset "{dataset}" FAILED.\n\nReason: Job failed, please'
    )
    assert "NotEnoughClasses: need at least 2 labelled classes" in text
    logs = f"s3://featurizer-data/logs/applications/{local_aws.application_id}/jobs/{run['jobRunId']}/"
    assert f"Logs: {logs}\n" in text
    assert f"driver output: {logs}SPARK_DRIVER/stderr.gz" in text
    assert f"the images are still in s3://featurizer-data/inbox/{dataset}/" in text


def test_failed_flag_and_failed_state_change_send_one_message(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    run: dict[str, Any],
    sns_inbox: Any,
) -> None:
    run_id = run["run_id"]
    write_output(local_aws, dataset, run_id, ["_FAILED.json"])
    handlers["NotifyFunction"](
        events.s3_object_created(f"runs/{dataset}/{run_id}/_FAILED.json", T_END), context
    )
    local_aws.set_job_state(run["jobRunId"], "FAILED", "Job failed. ExitCode: 1.")
    state = events.emr_state_change(
        run["jobRunId"], "FAILED", T_END + 30, local_aws.application_id, "ExitCode: 1"
    )
    handlers["NotifyFunction"](state, context)

    (message,) = sns_inbox()
    assert (
        "Reason: need at least 2 labelled classes to fit the classifier, found 1 (Banana)\n"
        in message["Message"]
    )
    assert "Failed stage: fit (NotEnoughClasses)\n" in message["Message"]


@pytest.mark.parametrize(
    ("state", "details", "subject_verb", "reason"),
    [
        ("CANCELLED", "Job run cancelled by user", "was cancelled", "Job run cancelled by user"),
        ("CANCELLED", "Job run timed out after 120 minutes", "was cancelled", "timed out after 120 minutes"),
        ("SUCCESS", None, "failed", "the job ended without writing _COMPLETED.json"),
    ],
)
def test_cancelled_or_flagless_runs_are_not_silent(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    run: dict[str, Any],
    sns_inbox: Any,
    state: str,
    details: str | None,
    subject_verb: str,
    reason: str,
) -> None:
    local_aws.set_job_state(run["jobRunId"], state, details)
    handlers["NotifyFunction"](
        events.emr_state_change(run["jobRunId"], state, T_END, local_aws.application_id, details), context
    )
    (message,) = sns_inbox()
    assert message["Subject"] == f"Featurizer run {subject_verb}: {dataset} ({run['run_id']})"
    assert reason in message["Message"]


def test_a_failed_job_run_the_service_did_not_start_is_still_reported(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, sns_inbox: Any
) -> None:
    event = events.emr_state_change("00f1unknownjob01", "FAILED", T_END, local_aws.application_id, "OOM")
    handlers["NotifyFunction"](event, context)
    (message,) = sns_inbox()
    assert message["Subject"] == "Featurizer run failed: unknown dataset (EMR job run 00f1unknownjob01)"
    assert "Reason: OOM" in message["Message"]


def test_a_job_run_whose_link_to_its_run_was_lost_is_reported_under_its_run(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    sns_inbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job run was started but its id never written: its end event still finds the run, by the job
    run's name, and a completed run gets its one success message, not a false failure."""
    from common import records

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB is unavailable")

    s3 = local_aws.client("s3")
    s3.put_object(Bucket="featurizer-data", Key=f"inbox/{dataset}/Training/Banana/b1.jpg", Body=b"jpeg")
    monkeypatch.setattr(records, "record_job_run", unavailable)
    with pytest.raises(ConnectionError):
        body = json.dumps({"input": f"s3://featurizer-data/inbox/{dataset}/"})
        handlers["ApiFunction"](events.api("POST", "/runs", body), context)
    monkeypatch.undo()
    (job,) = local_aws.job_runs(dataset)
    run_id = job["name"]
    write_output(
        local_aws, dataset, run_id, ["manifest.json", "metrics.json", "timings.json", "_COMPLETED.json"]
    )

    local_aws.set_job_state(job["id"], "SUCCESS")
    ended = events.emr_state_change(job["id"], "SUCCESS", T_END, local_aws.application_id)
    assert handlers["NotifyFunction"](ended, context)["published"] == f"succeeded#{run_id}"
    flag = events.s3_object_created(f"runs/{dataset}/{run_id}/_COMPLETED.json", T_END)
    assert handlers["NotifyFunction"](flag, context)["published"] == f"succeeded#{run_id}"  # the same one

    (message,) = sns_inbox()
    assert message["Subject"].startswith(f"Featurizer run succeeded: {dataset}")
    index = local_aws.client("dynamodb").get_item(
        TableName=local_aws.table_name, Key={"pk": {"S": f"jobrun#{job['id']}"}}, ConsistentRead=True
    )
    assert index["Item"]["run_id"] == {"S": run_id}, "the lost link is written once found"


def test_a_forged_completion_flag_sends_nothing_and_a_flag_that_is_no_json_object_is_a_failure(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    run: dict[str, Any],
    sns_inbox: Any,
) -> None:
    s3 = local_aws.client("s3")
    forged_run = f"{dataset}-20261124T100000-deadbeef"
    write_output(local_aws, dataset, forged_run, ["manifest.json", "_COMPLETED.json"])
    forged = events.s3_object_created(f"runs/{dataset}/{forged_run}/_COMPLETED.json", T_END)
    assert handlers["NotifyFunction"](forged, context) == {"published": None}
    elsewhere = events.s3_object_created(f"runs/another-dataset/{run['run_id']}/_COMPLETED.json", T_END)
    assert handlers["NotifyFunction"](elsewhere, context) == {"published": None}, "a real run, wrong folder"
    assert sns_inbox() == []

    key = f"runs/{dataset}/{run['run_id']}/_COMPLETED.json"
    s3.put_object(Bucket="featurizer-data", Key=key, Body=b'["not", "an", "object"]')
    result = handlers["NotifyFunction"](events.s3_object_created(key, T_END), context)
    assert result["published"] == f"failed#{run['run_id']}"
    (message,) = sns_inbox()
    assert f"s3://featurizer-data/{key} holds a JSON list, not an object" in message["Message"]


def test_a_predict_run_s_message_says_how_many_images_went_to_which_class() -> None:
    from notify.messages import success_notice

    completed = json.loads((RUN_OUTPUT / "_COMPLETED.json").read_text())
    completed["summary"] = {
        "images_found": 12,
        "images_featurized": 11,
        "images_rejected": 1,
        "model_run": "s3://featurizer-data/runs/flowers/trained/",
        "images_classified": 11,
        "predicted": {"Banana": 3, "Kiwi": 8, "Lemon": 0},
        "images_scored": 4,
        "accuracy": 0.75,
        "duration_seconds": 61.0,
    }
    notice = success_notice(
        bucket="featurizer-data",
        dataset="flowers",
        run_id="p1",
        completed=completed,
        manifest={"input": "s3://featurizer-data/inbox/flowers/_predict/week-49/"},
        metrics=None,
        timings=None,
    )

    text = notice.message
    assert text.startswith('Predict run p1 for dataset "flowers" finished successfully.')
    assert "\nImages from: s3://featurizer-data/inbox/flowers/_predict/week-49/\n" in text  # which batch
    assert "s3://featurizer-data/runs/flowers/trained/" in text
    assert "Images classified:  11\n  Kiwi: 8\n  Banana: 3\nAccuracy:           75.0 % against" in text
    assert "Lemon" not in text and "predictions.csv" in text and "pca.csv" not in text


def test_a_run_cancelled_after_its_completion_flag_gets_its_success_message(
    local_aws: Any,
    handlers: dict[str, Any],
    events: Any,
    context: Any,
    dataset: str,
    run: dict[str, Any],
    sns_inbox: Any,
) -> None:
    """Its outputs are complete (GET says COMPLETED): the cancel that ended the job run after the flag
    does not make it a failure, whichever event comes first."""
    run_id = run["run_id"]
    write_output(
        local_aws, dataset, run_id, ["manifest.json", "metrics.json", "timings.json", "_COMPLETED.json"]
    )
    local_aws.set_job_state(run["jobRunId"], "CANCELLED", "Job run cancelled by user")
    cancelled = events.emr_state_change(run["jobRunId"], "CANCELLED", T_END, local_aws.application_id)
    assert handlers["NotifyFunction"](cancelled, context)["published"] == f"succeeded#{run_id}"
    flag = events.s3_object_created(f"runs/{dataset}/{run_id}/_COMPLETED.json", T_END)
    assert handlers["NotifyFunction"](flag, context)["published"] == f"succeeded#{run_id}"
    (message,) = sns_inbox()
    assert message["Subject"].startswith("Featurizer run succeeded")
