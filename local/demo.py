"""``make demo``: the sample images through the whole local service, from the inbox drop to the e-mail.

Starts the stack, draws the sample images (``featurizer.samples``, as ``featurizer sample`` does), uploads
them into ``s3://<data>/inbox/<dataset>/``, follows the run the drop starts (job run states and the job's
own progress lines), prints the notification, the run's metrics and where its outputs are (copied to
``demo/runs/<run_id>/``, since the local S3 lives in memory), and stops the stack.
"""

from __future__ import annotations

import json
import queue
import re
import time
from pathlib import Path
from typing import Any

from featurizer.samples import generate
from featurizer.storage import parse_s3
from local.jobs import TERMINAL
from local.stack import ROOT, LocalStack, StackOptions
from local.template import DATA_BUCKET, REGION

RUN_TIMEOUT_SECONDS = 900
# The job's own lines: "[stage] ...", its closing summary, and "error: ..." (featurizer.progress, job.main).
JOB_LINE = re.compile(r"^\[\w+\] |^[\d,]+ images featurized|^error: |^run failed")


def print_endpoints(stack: LocalStack) -> None:
    endpoints, options = stack.endpoints, stack.options
    inbox = f"s3://{DATA_BUCKET}/inbox/fruits/"
    lines = [
        "",
        "Local stack ready (IAM authorization and SigV4 signatures are not checked locally):",
        f"  AWS services (S3, SQS, SNS, DynamoDB, EventBridge): {endpoints['aws']}  (keys testing/testing)",
        f"  EMR Serverless API: {endpoints['emr']}  application {stack.describe()['application_id']}",
        f"  HTTP API: {endpoints['api']}/runs",
        f"  debounce QUIET_SECONDS={options.quiet_seconds} s, sweep every {options.sweep_seconds:g} s "
        "(AWS: 120 s, every minute)",
        f"  function logs, job work folders, SNS messages: {options.state_dir}/",
        "Try:",
        f"  export AWS_ENDPOINT_URL={endpoints['aws']} AWS_ACCESS_KEY_ID=testing",
        f"  export AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={REGION}",
        f"  then upload images to {inbox} with any S3 client (one folder per class)",
        f'  curl -X POST {endpoints["api"]}/runs -d \'{{"input": "{inbox}"}}\'',
        f"  curl {endpoints['api']}/runs/<run_id>",
        "Ctrl-C stops the stack.",
    ]
    print("\n".join(lines), flush=True)


def upload_folder(s3: Any, folder: Path, prefix: str) -> int:
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), DATA_BUCKET, f"{prefix}{path.relative_to(folder).as_posix()}")
            count += 1
    return count


def download_prefix(s3: Any, prefix: str, target: Path) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DATA_BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            path = target / item["Key"].removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(DATA_BUCKET, item["Key"], str(path))


class Follower:
    """Prints a job run's state changes and the job's own progress lines as they come.

    spark-submit merges the Python driver's stderr, where the job reports its stages, into its stdout;
    Spark's log4j lines stay out of the demo's view (they are in the run's driver log under logUri).
    """

    def __init__(self, stack: LocalStack, started: float) -> None:
        self.stack = stack
        self.started = started
        self.state = ""
        self.printed = 0

    def say(self, text: str) -> None:
        print(f"[{time.time() - self.started:6.1f} s] {text}", flush=True)

    def poll(self, job_run_id: str) -> str:
        assert self.stack.application is not None
        run = self.stack.application.execution(job_run_id).run
        if run.state != self.state:
            self.state = run.state
            self.say(f"EMR job run {job_run_id}: {run.state} {run.state_details[:160]}".rstrip())
        stdout = run.work_dir / "stdout" if run.work_dir else None
        if stdout and stdout.exists():
            lines = stdout.read_text(errors="replace").splitlines()
            for line in lines[self.printed :]:
                if JOB_LINE.match(line):
                    self.say(f"  job: {line.strip()[:150]}")
            self.printed = len(lines)
        return run.state


def metrics_summary(metrics: dict[str, Any]) -> str:
    """metrics.json in a few lines: overall scores, per-class precision and recall, PCA variance."""
    lines = [
        f"metrics.json: accuracy {metrics['accuracy']:.3f}, weighted F1 {metrics['weighted_f1']:.3f} on "
        f"{metrics['test_images']} test images ({metrics['train_images']} trained on)",
        f"  {'class':<24}{'precision':>10}{'recall':>8}{'images':>8}",
    ]
    for label, scores in metrics["per_class"].items():
        lines.append(
            f"  {label:<24}{scores['precision']:>10.3f}{scores['recall']:>8.3f}{scores['support']:>8}"
        )
    pca = metrics["pca"]
    lines.append(f"  PCA: {pca['k']} components explain {pca['cumulative'][-1]:.1%} of the variance")
    return "\n".join(lines)


def run_demo(options: StackOptions, dataset: str) -> int:
    started = time.time()
    notices: queue.Queue[tuple[str, str]] = queue.Queue()
    with LocalStack(
        options, on_notification=lambda subject, message: notices.put((subject, message))
    ) as stack:
        follow = Follower(stack, started)
        follow.say(f"local stack up ({', '.join(f'{k} {v}' for k, v in stack.endpoints.items())})")
        images = ROOT / "demo" / "images"
        if not images.is_dir():
            generate(images)
        s3 = stack.aws.client("s3")
        count = upload_folder(s3, images, f"inbox/{dataset}/")
        follow.say(
            f"uploaded {count} files to s3://{DATA_BUCKET}/inbox/{dataset}/; the run starts once uploads "
            f"have been quiet for {options.quiet_seconds} s, checked every {options.sweep_seconds:g} s "
            "(on AWS: 120 s, every minute)"
        )
        assert stack.application is not None
        deadline = time.time() + RUN_TIMEOUT_SECONDS
        while not stack.application.executions and time.time() < deadline:
            time.sleep(1)
        if not stack.application.executions:
            follow.say("no run started: see the function logs in " + str(options.state_dir / "logs"))
            return 1
        execution = next(iter(stack.application.executions.values()))
        run_id, job_run_id = execution.run.name, execution.run.job_run_id
        follow.say(f"run {run_id} started as EMR job run {job_run_id}")
        while follow.poll(job_run_id) not in TERMINAL and time.time() < deadline:
            time.sleep(1)
        if follow.state not in TERMINAL:
            follow.say(
                f"EMR job run {job_run_id} timed out: still {follow.state} after {RUN_TIMEOUT_SECONDS} s "
                f"(its driver log: {execution.run.work_dir})"
            )
            return 1
        try:
            subject, message = notices.get(timeout=60)
        except queue.Empty:
            follow.say("no notification arrived within 60 s")
            return 1
        print(f"\n--- SNS message (the e-mail) ---\nSubject: {subject}\n\n{message}\n---", flush=True)
        if follow.state != "SUCCESS":
            return 1
        arguments = execution.run.job_driver["sparkSubmit"]["entryPointArguments"]
        prefix = parse_s3(f"{arguments[arguments.index('--output') + 1]}{run_id}/").key
        metrics = json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=f"{prefix}metrics.json")["Body"].read())
        local_copy = ROOT / "demo" / "runs" / run_id
        download_prefix(s3, prefix, local_copy)
        print(metrics_summary(metrics))
        print(
            f"\noutputs: s3://{DATA_BUCKET}/{prefix} (local S3, gone when the stack stops), copied to "
            f"{local_copy.relative_to(ROOT)}/\ndone in {time.time() - started:.0f} s; stopping the stack",
            flush=True,
        )
    return 0
