"""Start and stop the local stack (``python -m local stack``) as its own process, and talk to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local.ports import Ports, is_free
from local.template import DATA_BUCKET, REGION
from tests.paths import ROOT
from tests.ports import free_port

START_TIMEOUT_SECONDS = 600  # a fresh checkout builds the packed environment first
STOP_TIMEOUT_SECONDS = 90
QUIET_SECONDS = 10  # the debounce the e2e stack runs with
SWEEP_SECONDS = 3


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    ports: Ports
    state_dir: Path
    log: Path
    endpoints: dict[str, str]

    def client(self, service: str) -> Any:
        endpoint = self.endpoints["emr" if service == "emr-serverless" else "aws"]
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoints['api']}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def upload(self, folder: Path, dataset: str) -> int:
        s3 = self.client("s3")
        count = 0
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                s3.upload_file(
                    str(path), DATA_BUCKET, f"inbox/{dataset}/{path.relative_to(folder).as_posix()}"
                )
                count += 1
        return count

    def job_runs(self, dataset: str) -> list[dict[str, Any]]:
        emr = self.client("emr-serverless")
        runs = emr.list_job_runs(applicationId=self.application_id)["jobRuns"]
        return [run for run in runs if run["name"].startswith(f"{dataset}-")]

    @property
    def application_id(self) -> str:
        return str(json.loads((self.state_dir / "stack.json").read_text())["application_id"])

    def notifications(self) -> list[dict[str, str]]:
        path = self.state_dir / "sns-messages.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def leftovers(self) -> list[str]:
        """Processes still running for this stack: in its state folder, or pointed at its AWS port."""
        marker = f"127.0.0.1:{self.ports.aws}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cwd = os.readlink(proc / "cwd")
                environ = (proc / "environ").read_bytes()
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cwd.startswith(str(self.state_dir)) or marker in environ:
                found.append(f"{proc.name}: {cmdline[:150]}")
        return found


def start(
    state_dir: Path,
    weights: Path,
    *extra: str,
    quiet_seconds: int = QUIET_SECONDS,
    sweep_seconds: float = SWEEP_SECONDS,
) -> RunningStack:
    ports = Ports(free_port(), free_port(), free_port())
    ready = state_dir.parent / f"{state_dir.name}-ready.json"
    log = state_dir.parent / f"{state_dir.name}.log"
    command = [
        sys.executable, "-m", "local", "stack",
        "--aws-port", str(ports.aws), "--emr-port", str(ports.emr), "--api-port", str(ports.api),
        "--state-dir", str(state_dir), "--ready-file", str(ready), "--quiet-seconds", str(quiet_seconds),
        "--sweep-seconds", str(sweep_seconds), *extra,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "FEATURIZER_WEIGHTS": str(weights)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:  # whatever stops the start (a timeout, the test's SIGALRM, Ctrl-C) stops the stack too
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.exists():  # written whole (renamed into place) once the stack is ready
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        endpoints = json.loads(ready.read_text())["endpoints"]
    except BaseException:
        stop_process(process)
        raise
    return RunningStack(process, ports, state_dir, log, endpoints)


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (the stack's clean shutdown), then SIGKILL its process group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def stop(stack: RunningStack) -> list[str]:
    """Stop the stack; returns what is still there afterwards (busy ports, processes), empty when clean."""
    code = stop_process(stack.process)
    problems = [f"exit status {code}"] if code != 0 else []
    problems += [f"port {port} still in use" for port, _ in stack.ports.named().values() if not is_free(port)]
    return problems + stack.leftovers()


def wait_for(condition: Any, timeout: float, what: str, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_state(stack: RunningStack, job_run_id: str) -> str:
    emr = stack.client("emr-serverless")
    return str(emr.get_job_run(applicationId=stack.application_id, jobRunId=job_run_id)["jobRun"]["state"])


def notification(stack: RunningStack, run_id: str, timeout: float = 90) -> dict[str, str]:
    found: dict[str, str] = wait_for(
        lambda: next((m for m in stack.notifications() if run_id in m["Message"]), None),
        timeout,
        f"the notification of {run_id}",
    )
    return found
