"""A realistic drop through the local stack, timed from the first PUT to the one completion e-mail (issue 20).

    FEATURIZER_WEIGHTS=../shared/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        .venv/bin/python -m bench.drop                    # 15,633 images, 16 upload threads
        .venv/bin/python -m bench.drop --images 1500      # a quick check

The stack runs as its own process (``python -m local stack``), so the uploads compete with it as a user's
do, not for its interpreter. The debounce runs as deployed: the template's QuietSeconds, its uploads event
source's batching window and its sweep schedule, so that only a drain that keeps up, or the backlog rule,
keeps a run from starting on part of the drop. Prints the upload's rate, the drain's, the time from the
first PUT to the e-mail, the runs started (one) and the images in that run's manifest (all).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from featurizer.options import WEIGHTS_ENV
from featurizer.samples import CLASSES, generate
from local.stack import rate_seconds
from local.template import DATA_BUCKET, REGION, load_template, resource_names
from tests.e2e import stack as local_stack
from tests.e2e.stack import RunningStack, wait_for

GOAL_SECONDS = 600
MAIL_TIMEOUT_SECONDS = 3600


def template_debounce() -> tuple[int, float, float]:
    """QuietSeconds, the uploads batching window and the sweep period, as template.yaml deploys them."""
    template = load_template()
    resources = template["Resources"]
    (tick,) = resources["SweepFunction"]["Properties"]["Events"].values()
    return (
        int(template["Parameters"]["QuietSeconds"]["Default"]),
        float(resources["UploadsEventSource"]["Properties"]["MaximumBatchingWindowInSeconds"]),
        rate_seconds(tick["Properties"]["Schedule"]),
    )


def parse(argv: list[str]) -> argparse.Namespace:
    quiet, window, sweep = template_debounce()
    parser = argparse.ArgumentParser(prog="python -m bench.drop", description=__doc__)
    parser.add_argument("--images", type=int, default=15_633)
    parser.add_argument("--threads", type=int, default=16, help="upload threads")
    parser.add_argument("--quiet-seconds", type=int, default=quiet, help=f"QUIET_SECONDS (template: {quiet})")
    parser.add_argument("--batch-window-seconds", type=float, default=window, help=f"template: {window:g}")
    parser.add_argument("--sweep-seconds", type=float, default=sweep, help=f"template: {sweep:g}")
    parser.add_argument(
        "--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "featurizer-bench" / "drop"
    )
    return parser.parse_args(argv)


def sample_images(work: Path, count: int) -> tuple[Path, list[Path]]:
    """``count`` sample images without defects under one folder per class, drawn once and reused."""
    per_class = math.ceil(count / len(CLASSES))
    folder = work / f"images-{per_class}"
    drawn = folder.with_suffix(".drawn")
    if not drawn.exists():
        generate(folder, per_class=per_class, seed=20, defects=False)
        drawn.touch()
    return folder, sorted(p for p in folder.rglob("*") if p.is_file())[:count]


@dataclass
class Drain:
    """The uploads queue, looked at every second: its largest backlog, and when it was first seen empty
    after the last PUT (every upload event recorded)."""

    queue: Any
    url: str
    uploaded: threading.Event
    peak: int = 0
    empty_at: float | None = None

    def watch(self) -> None:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        while self.empty_at is None:
            counts = self.queue.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
            queued = sum(int(counts[name]) for name in names)
            self.peak = max(self.peak, queued)
            if queued == 0 and self.uploaded.is_set():
                self.empty_at = time.monotonic()
            time.sleep(1)


def client(stack: RunningStack, service: str, threads: int) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stack.endpoints["aws"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=threads),
    )


def measure(stack: RunningStack, args: argparse.Namespace, folder: Path, images: list[Path]) -> int:
    dataset = f"drop{len(images)}"
    s3 = client(stack, "s3", args.threads)
    uploaded = threading.Event()
    queue_url = resource_names("", stack.endpoints["aws"])["UploadsQueue"]
    drain = Drain(client(stack, "sqs", 1), queue_url, uploaded)
    threading.Thread(target=drain.watch, daemon=True).start()

    def put(path: Path) -> None:
        key = f"inbox/{dataset}/{path.relative_to(folder).as_posix()}"
        s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=path.read_bytes())

    first_put = time.monotonic()
    with ThreadPoolExecutor(args.threads) as pool:
        for _ in pool.map(put, images):
            pass
    upload_seconds = time.monotonic() - first_put
    uploaded.set()
    print(f"uploaded {len(images):,} images in {upload_seconds:.1f} s", flush=True)

    mail = wait_for(
        lambda: next((m for m in stack.notifications() if f": {dataset} " in m["Subject"]), None),
        MAIL_TIMEOUT_SECONDS,
        "the run's e-mail",
        every=0.5,
    )
    mailed = time.monotonic() - first_put
    print(f"e-mail after {mailed:.1f} s: {mail['Subject']}", flush=True)
    time.sleep(args.sweep_seconds + 5)  # a run claimed for late events would have started by now
    runs = stack.job_runs(dataset)
    featurized = images_featurized(s3, dataset, runs[0]["name"]) if len(runs) == 1 else None

    drained = (drain.empty_at - first_put) if drain.empty_at is not None else math.nan
    lines = [
        f"images               {len(images):,}, {args.threads} upload threads; QuietSeconds "
        f"{args.quiet_seconds}, batching window {args.batch_window_seconds:g} s, sweep every "
        f"{args.sweep_seconds:g} s",
        f"upload               {upload_seconds:.1f} s, {len(images) / upload_seconds:.1f} objects/s",
        f"drain                every event recorded {drained:.1f} s after the first PUT "
        f"({len(images) / drained:.1f} events/s), at most {drain.peak:,} queued",
        f"first PUT to e-mail  {mailed:.1f} s ({mailed / 60:.1f} min; goal: under {GOAL_SECONDS // 60} min)",
        f"runs started         {len(runs)} (goal: 1)",
        f"images in the run    {featurized} featurized of {len(images):,} uploaded",
    ]
    print("\n".join(lines), flush=True)
    return 0 if len(runs) == 1 and featurized == len(images) and mailed < GOAL_SECONDS else 1


def images_featurized(s3: Any, dataset: str, run_id: str) -> int:
    body = s3.get_object(Bucket=DATA_BUCKET, Key=f"runs/{dataset}/{run_id}/manifest.json")["Body"].read()
    return int(json.loads(body)["counts"]["images_featurized"])


def main(argv: list[str]) -> int:
    args = parse(argv)
    weights = os.environ.get(WEIGHTS_ENV)
    if not weights:
        print(f"error: set {WEIGHTS_ENV} to the MobileNetV2 no-top weights (.h5)", file=sys.stderr)
        return 2
    folder, images = sample_images(args.work, args.images)
    stack = local_stack.start(
        args.work / "state",
        Path(weights),
        *("--batch-window-seconds", str(args.batch_window_seconds)),
        quiet_seconds=args.quiet_seconds,
        sweep_seconds=args.sweep_seconds,
    )
    try:
        return measure(stack, args, folder, images)
    finally:
        problems = local_stack.stop(stack)
        if problems:
            print(f"the local stack did not stop cleanly: {problems}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
