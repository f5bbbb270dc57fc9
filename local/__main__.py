"""``python -m local stack|demo``: the local stack, left running or driven through the demo."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from local.artifacts import ArtifactBuildError
from local.ports import PortBusyError, Ports
from local.stack import LocalStack, StackOptions, StateDirError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("command", choices=["stack", "demo"])
    defaults = Ports()
    parser.add_argument(
        "--aws-port", type=int, default=defaults.aws, help="moto: S3, SQS, SNS, DynamoDB, EventBridge"
    )
    parser.add_argument("--emr-port", type=int, default=defaults.emr, help="the local EMR Serverless API")
    parser.add_argument(
        "--api-port", type=int, default=defaults.api, help="the HTTP API (POST/GET/DELETE /runs)"
    )
    parser.add_argument(
        "--quiet-seconds", type=int, default=10, help="debounce (QUIET_SECONDS; AWS default 120)"
    )
    parser.add_argument("--sweep-seconds", type=float, default=5, help="sweep period (AWS: every minute)")
    parser.add_argument(
        "--batch-window-seconds",
        type=float,
        default=StackOptions().batch_window_seconds,
        help="the uploads event source's batching window, at most the template's (20 s)",
    )
    parser.add_argument("--spark-cores", type=int, default=2)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--state-dir", type=Path, default=StackOptions().state_dir)
    parser.add_argument("--ready-file", type=Path, help="stack: write the endpoints (JSON) here once ready")
    parser.add_argument("--dataset", default="fruits", help="demo: the dataset name under inbox/")
    return parser.parse_args(argv)


def _wait_for_signal() -> None:
    stopping = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    stopping.wait()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Unwind through LocalStack's cleanup, which stops every child; a second SIGTERM cannot cut it short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # until the stack is up and waits for its signal
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("botocore", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = StackOptions(
        ports=Ports(args.aws_port, args.emr_port, args.api_port),
        quiet_seconds=args.quiet_seconds,
        sweep_seconds=args.sweep_seconds,
        batch_window_seconds=args.batch_window_seconds,
        spark_cores=args.spark_cores,
        driver_memory=args.driver_memory,
        state_dir=args.state_dir.resolve(),
    )
    try:
        if args.command == "demo":
            from local.demo import run_demo

            return run_demo(options, args.dataset)
        with LocalStack(options, on_notification=print_notification) as stack:
            from local.demo import print_endpoints

            print_endpoints(stack)
            if args.ready_file:
                write_atomically(args.ready_file, stack.describe_json())
            _wait_for_signal()
            print("stopping the local stack ...", flush=True)
        return 0
    except (PortBusyError, ArtifactBuildError, StateDirError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def write_atomically(path: Path, text: str) -> None:
    """Whoever waits for ``path`` to exist reads it whole: written aside, then renamed into place."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


def print_notification(subject: str, message: str) -> None:
    print(f"\n--- SNS message: {subject}\n{message}\n---", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
