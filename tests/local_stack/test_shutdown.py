"""The stack stops cleanly even in the middle of a job run, and refuses a busy port with a clear error."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from featurizer.samples import generate
from local.ports import HOST
from local.template import DATA_BUCKET
from tests.e2e import stack as local_stack
from tests.e2e.stack import job_state, wait_for
from tests.paths import ROOT
from tests.ports import free_port


def test_stopping_the_stack_during_a_run_leaves_no_process_or_port(tmp_path: Path, weights: Path) -> None:
    running = local_stack.start(tmp_path / "state", weights)
    try:
        generate(tmp_path / "images", per_class=4, seed=2, defects=False)
        running.upload(tmp_path / "images", "stopping")
        status, created = running.api("POST", "/runs", {"input": f"s3://{DATA_BUCKET}/inbox/stopping/"})
        assert status == 202, created
        wait_for(lambda: job_state(running, created["jobRunId"]) == "RUNNING", 90, "the run to start")
        assert running.leftovers(), "the running job and functions should be visible before the stop"
    finally:
        problems = local_stack.stop(running)

    assert problems == []


def test_a_busy_port_is_refused_with_the_option_that_moves_it() -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        others = ["--aws-port", str(free_port()), "--emr-port", str(free_port())]  # only the API port busy
        result = subprocess.run(
            [sys.executable, "-m", "local", "stack", *others, "--api-port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 (HTTP API) is already in use" in result.stderr
    assert "--api-port PORT" in result.stderr
