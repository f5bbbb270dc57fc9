"""The local EMR's job runs: each reaches a final state; only CANCELLED or FAILED follow CANCELLING."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from local.jobs import JobExecution, JobRun, Runtime
from tests.local_stack.job_runs import a_job_run


class BrokenS3:
    def put_object(self, **kwargs: Any) -> None:
        raise ConnectionError("S3 is down")


class QuickExecution(JobExecution):
    """spark-submit replaced by a Python process that exits at once with ``exit_code``."""

    exit_code = 0

    def _prepare(self, work: Path) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-c", f"raise SystemExit({self.exit_code})"], dict(os.environ)


def execution(tmp_path: Path, emitted: list[tuple[str, str]], *, emit_fails: bool = False) -> QuickExecution:
    runtime = Runtime(BrokenS3(), "", {}, [], Path(), tmp_path, cores=1, driver_memory="1g")

    def emit(run: JobRun, previous: str) -> None:
        emitted.append((previous, run.state))
        if emit_fails:
            raise ConnectionError("EventBridge is down")

    return QuickExecution(a_job_run(), runtime, emit)


def test_a_failed_log_upload_still_ends_the_run_with_its_event(tmp_path: Path) -> None:
    emitted: list[tuple[str, str]] = []
    run = execution(tmp_path, emitted)

    run.announce_submitted()
    run.execute()

    assert emitted == [
        ("", "SUBMITTED"),
        ("SUBMITTED", "PENDING"),
        ("PENDING", "SCHEDULED"),
        ("SCHEDULED", "RUNNING"),
        ("RUNNING", "SUCCESS"),
    ]
    assert run.run.ended_at is not None


def test_a_failing_event_does_not_stop_the_run_reaching_its_final_state(tmp_path: Path) -> None:
    emitted: list[tuple[str, str]] = []
    run = execution(tmp_path, emitted, emit_fails=True)
    run.exit_code = 3

    run.execute()

    assert run.run.state == "FAILED"
    assert "ExitCode: 3." in run.run.state_details
    assert emitted[-1] == ("RUNNING", "FAILED")


def test_a_cancel_while_submitted_goes_straight_to_cancelled(tmp_path: Path) -> None:
    emitted: list[tuple[str, str]] = []
    run = execution(tmp_path, emitted)

    run.request_cancel("Job run was cancelled by a CancelJobRun request")
    run.execute()

    assert emitted == [("SUBMITTED", "CANCELLING"), ("CANCELLING", "CANCELLED")]
    assert run.run.state_details == "Job run was cancelled by a CancelJobRun request"


@pytest.mark.parametrize(
    ("state", "moves"),
    [
        ("PENDING", False),
        ("SCHEDULED", False),
        ("RUNNING", False),
        ("SUCCESS", False),
        ("CANCELLED", True),
        ("FAILED", True),
    ],
)
def test_only_cancelled_or_failed_follow_cancelling(tmp_path: Path, state: str, moves: bool) -> None:
    emitted: list[tuple[str, str]] = []
    run = execution(tmp_path, emitted)
    run.set_state("PENDING")
    run.set_state("SCHEDULED")
    run.request_cancel("cancelled")  # between the SCHEDULED check and RUNNING

    assert run.set_state(state) is moves
    assert run.run.state == (state if moves else "CANCELLING")
    assert emitted[-1] == (("CANCELLING", state) if moves else ("SCHEDULED", "CANCELLING"))
