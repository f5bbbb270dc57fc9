"""Drop-to-run on the local stack: S3 events -> EventBridge -> SQS -> debounce -> one EMR run -> e-mail."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from featurizer.samples import generate
from local.jobs import TERMINAL
from local.template import ACCOUNT, DATA_BUCKET, REGION
from tests.e2e.stack import QUIET_SECONDS, SWEEP_SECONDS, RunningStack, job_state, notification, wait_for


def test_a_drop_of_a_few_hundred_images_starts_one_run_that_completes_and_notifies(
    stack: RunningStack, dataset: str, tmp_path: Path
) -> None:
    """Then a prediction batch dropped under the dataset's _predict/ folder is classified with that run."""
    samples = generate(tmp_path / dataset, per_class=60, seed=7, defects=True)
    uploaded = stack.upload(samples.root, dataset)

    (run,) = wait_for(lambda: stack.job_runs(dataset), 60, "the run the drop starts")
    wait_for(lambda: job_state(stack, run["id"]) in TERMINAL, 240, "the run to end", every=2)

    assert job_state(stack, run["id"]) == "SUCCESS"
    assert len(stack.job_runs(dataset)) == 1
    message = notification(stack, run["name"])
    found = samples.images
    featurized = samples.images - samples.defective
    assert message["Subject"] == f"Featurizer run succeeded: {dataset} ({featurized} images)"
    assert f"Images found:       {found}\n" in message["Message"]
    first_run = f"(0 reused from earlier runs, {featurized} new; 0 gone from the input since)"
    assert f"Images featurized:  {featurized} {first_run}\n" in message["Message"]
    assert f"Images rejected:    {samples.defective} " in message["Message"]
    assert uploaded == found + samples.other_files
    flag = stack.client("s3").get_object(
        Bucket=DATA_BUCKET, Key=f"runs/{dataset}/{run['name']}/_COMPLETED.json"
    )
    assert json.loads(flag["Body"].read())["summary"]["images_featurized"] == featurized

    # Issue 23: a prediction batch dropped beside the dataset is classified with the run just trained
    batch = generate(tmp_path / "week-49", per_class=3, seed=11, defects=False)
    (batch.root / "_START").write_bytes(b"")
    stack.upload(batch.root, f"{dataset}/_predict/week-49")
    (predict,) = wait_for(
        lambda: [r for r in stack.job_runs(dataset) if r["id"] != run["id"]], 60, "the batch's run"
    )
    wait_for(lambda: job_state(stack, predict["id"]) in TERMINAL, 240, "the predict run to end", every=2)
    assert job_state(stack, predict["id"]) == "SUCCESS"
    message = notification(stack, predict["name"])["Message"]
    assert f"Classified with the pipeline of: s3://{DATA_BUCKET}/runs/{dataset}/{run['name']}/" in message
    assert f"Images from: s3://{DATA_BUCKET}/inbox/{dataset}/_predict/week-49" in message
    assert f"Images classified:  {batch.images}\n" in message
    key = f"runs/{dataset}/{predict['name']}/predictions.csv"
    rows = stack.client("s3").get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode().splitlines()
    assert len(rows) == 1 + batch.images
    assert len(stack.job_runs(dataset)) == 2, "the batch started no training run of the dataset"


def test_duplicate_s3_events_start_one_run(stack: RunningStack, dataset: str, tmp_path: Path) -> None:
    samples = generate(tmp_path / dataset, per_class=6, seed=5, defects=False)
    stack.upload(samples.root, dataset)
    stack.upload(samples.root, dataset)  # every object created twice: two events each
    s3, sqs = stack.client("s3"), stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="UploadsQueue")["QueueUrl"]
    listed = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"inbox/{dataset}/")["Contents"]
    events = [object_created(item["Key"], item["ETag"].strip('"'), item["Size"]) for item in listed]

    def deliver_again() -> None:  # the same events again (at-least-once delivery), not new uploads
        for event in events:
            for _ in range(2):
                sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))

    deliver_again()
    (run,) = wait_for(lambda: stack.job_runs(dataset), 60, "the run the drop starts")
    deliver_again()  # late duplicates of objects the run already reads
    time.sleep(QUIET_SECONDS + 4 * SWEEP_SECONDS)  # past the quiet period and several sweeps
    wait_for(lambda: job_state(stack, run["id"]) == "SUCCESS", 240, "the run to finish")
    time.sleep(2 * SWEEP_SECONDS)  # sweeps after the run: the objects it read start nothing new
    assert [r["id"] for r in stack.job_runs(dataset)] == [run["id"]]


def object_created(key: str, etag: str, size: int) -> dict[str, object]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{DATA_BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": DATA_BUCKET},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }
