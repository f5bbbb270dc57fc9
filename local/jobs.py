"""Job runs of the local EMR Serverless application: their records, states and execution.

Each StartJobRun gets a thread that moves the run through EMR's states, emitting an "EMR Serverless Job Run
State Change" event at every change: SUBMITTED -> PENDING (entry point and archives fetched from S3, the
archive unpacked once per S3 object) -> SCHEDULED -> RUNNING (spark-submit in local mode, in its own
process group) -> SUCCESS / FAILED, or CANCELLING -> CANCELLED on CancelJobRun or after
``executionTimeoutMinutes``. The driver's stdout and stderr go to ``<logUri>applications/<app>/jobs/<id>/
SPARK_DRIVER/{stdout,stderr}.gz`` before the final state is announced, as on EMR.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurizer.storage import StorageError, parse_s3
from local import spark_submit

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
AFTER_CANCELLING = frozenset({"CANCELLED", "FAILED"})
ID_ALPHABET = string.digits + string.ascii_lowercase
STOP_GRACE_SECONDS = 10
EXCEPTION_LINE = re.compile(r"^\S*(Error|Exception)\b.*|^\w+(\.\w+)*(Error|Exception|Unavailable)\b: .*")


class JobRunError(RuntimeError):
    """A step before spark-submit failed (missing entry point or archive): the run ends FAILED."""


@dataclass
class JobRun:
    application_id: str
    arn: str
    job_run_id: str
    name: str
    client_token: str
    execution_role: str
    release_label: str
    job_driver: dict[str, Any]
    configuration_overrides: dict[str, Any]
    tags: dict[str, str]
    execution_timeout_minutes: int
    created_by: str
    state: str = "SUBMITTED"
    state_details: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""
    process: subprocess.Popen[bytes] | None = None
    work_dir: Path | None = None
    cores: int = 0  # what spark-submit ran on (local[cores])
    memory_gb: float = 0.0  # spark-submit's peak resident set, measured as it runs

    def describe(self) -> dict[str, Any]:
        """The ``JobRun`` shape of GetJobRun (botocore's emr-serverless model)."""
        described: dict[str, Any] = {
            "applicationId": self.application_id,
            "jobRunId": self.job_run_id,
            "name": self.name,
            "arn": self.arn,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "executionRole": self.execution_role,
            "state": self.state,
            "stateDetails": self.state_details,
            "releaseLabel": self.release_label,
            "configurationOverrides": self.configuration_overrides,
            "jobDriver": self.job_driver,
            "tags": self.tags,
            "executionTimeoutMinutes": self.execution_timeout_minutes,
            "mode": "BATCH",
            "attempt": 1,
            "attemptCreatedAt": self.created_at,
            "attemptUpdatedAt": self.updated_at,
        }
        if self.started_at is not None:
            described["startedAt"] = self.started_at
        if self.ended_at is not None:
            described["endedAt"] = self.ended_at
            described["totalExecutionDurationSeconds"] = int(
                self.ended_at - (self.started_at or self.ended_at)
            )
            described["totalResourceUtilization"] = self.utilization()
            described["billedResourceUtilization"] = self.utilization()
        return described

    def utilization(self) -> dict[str, float]:
        """EMR's ResourceUtilization of an ended run, as this machine measured it: the cores spark-submit
        held for its wall time, its largest resident set for as long, no billed disk (an estimate: EMR
        bills each worker's own vCPUs, memory and disk, with a one-minute minimum)."""
        hours = (self.ended_at or 0.0) - (self.started_at or self.ended_at or 0.0)
        hours /= 3600
        return {
            "vCPUHour": round(self.cores * hours, 6),
            "memoryGBHour": round(self.memory_gb * hours, 6),
            "storageGBHour": 0.0,
        }

    def summary(self) -> dict[str, Any]:
        """The ``JobRunSummary`` shape of ListJobRuns."""
        keys = ("applicationId", "name", "arn", "createdBy", "createdAt", "updatedAt", "executionRole")
        described = self.describe()
        return {key: described[key] for key in keys} | {
            "id": self.job_run_id,
            "state": self.state,
            "stateDetails": self.state_details,
            "releaseLabel": self.release_label,
            "type": "Spark",
            "mode": "BATCH",
        }

    def state_change_detail(self, previous: str) -> dict[str, Any]:
        """``detail`` of the EventBridge "EMR Serverless Job Run State Change" event."""
        detail = {
            "jobRunId": self.job_run_id,
            "applicationId": self.application_id,
            "arn": self.arn,
            "releaseLabel": self.release_label,
            "state": self.state,
            "previousState": previous,
            "stateDetails": self.state_details,
            "createdBy": self.created_by,
            "updatedAt": _iso(self.updated_at),
            "createdAt": _iso(self.created_at),
        }
        if not self.state_details:
            del detail["stateDetails"]
        if not previous:  # SUBMITTED
            del detail["previousState"]
        return detail


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}Z"


def new_job_run_id() -> str:
    return "00f" + "".join(secrets.choice(ID_ALPHABET) for _ in range(13))


@dataclass(frozen=True)
class Runtime:
    """What a local job run needs from the stack: S3, where to work, and how to run Spark."""

    s3: Any
    s3_endpoint: str
    aws_env: dict[str, str]
    s3a_jars: list[Path]
    spark_home: Path
    state_dir: Path
    cores: int
    driver_memory: str


class JobExecution:
    """Runs one job run to its end (on its own thread); ``emit`` announces every state change."""

    def __init__(self, run: JobRun, runtime: Runtime, emit: Callable[[JobRun, str], None]) -> None:
        self.run = run
        self.runtime = runtime
        self.emit = emit
        self.lock = threading.RLock()

    def set_state(self, state: str, details: str = "") -> bool:
        """Move to ``state`` if EMR allows it from the current one; returns whether it moved.

        Nothing follows a final state, and only CANCELLED or FAILED follow CANCELLING. The event is sent
        under the run's lock, so the events of one run leave in the order of its changes; a failed event
        is logged and the state change stands (the run still reaches its final state).
        """
        with self.lock:
            previous = self.run.state
            if previous in TERMINAL or previous == state:
                return False
            if previous == "CANCELLING" and state not in AFTER_CANCELLING:
                return False
            self.run.state, self.run.state_details = state, details[:256]
            self.run.updated_at = time.time()
            if state in TERMINAL:
                self.run.ended_at = self.run.updated_at
            logger.info("job run %s %s -> %s %s", self.run.job_run_id, previous, state, details[:120])
            self._emit(previous)
        return True

    def announce_submitted(self) -> None:
        """The SUBMITTED event (it has no previous state), before any other event of the run."""
        with self.lock:
            self._emit("")

    def _emit(self, previous: str) -> None:
        try:
            self.emit(self.run, previous)
        except Exception:
            logger.exception("job run %s: the %s event was not sent", self.run.job_run_id, self.run.state)

    def execute(self) -> None:
        """Run to a final state, whatever fails on the way (the driver-log upload, an event)."""
        try:
            self._execute()
        except Exception as error:
            logger.exception("job run %s: the local EMR failed", self.run.job_run_id)
            self.set_state("FAILED", f"Job failed: error in the local EMR: {error}")

    def _execute(self) -> None:
        run = self.run
        run.work_dir = self.runtime.state_dir / "jobs" / run.job_run_id
        run.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._cancelled():
                return
            self.set_state("PENDING")
            command, env = self._prepare(run.work_dir)
            if self._cancelled():
                return
            self.set_state("SCHEDULED")
            if self._cancelled():
                return
            code = self._spark_submit(command, env, run.work_dir)
        except Exception as error:
            logger.exception("job run %s could not run", run.job_run_id)
            self.set_state("FAILED", f"Job failed before Spark started: {error}")
            return
        try:
            self._upload_logs(run.work_dir)
        except Exception:  # the run's outcome does not depend on its logs
            logger.exception("job run %s: the driver logs were not uploaded", run.job_run_id)
        if run.cancel.is_set():
            self.set_state("CANCELLED", run.cancel_reason)
        elif code == 0:
            self.set_state("SUCCESS")
        else:
            self.set_state(
                "FAILED",
                "Job failed, please check complete logs in configured logging destination. "
                f"ExitCode: {code}. Last few exceptions: {_last_exceptions(run.work_dir / 'stderr')}",
            )

    def request_cancel(self, reason: str) -> None:
        self.run.cancel_reason = reason
        self.run.cancel.set()
        self.set_state("CANCELLING", reason)

    def _cancelled(self) -> bool:
        if self.run.cancel.is_set():
            self.set_state("CANCELLED", self.run.cancel_reason)
            return True
        return False

    def _prepare(self, work: Path) -> tuple[list[str], dict[str, str]]:
        submit = self.run.job_driver["sparkSubmit"]
        parameters = spark_submit.parse_parameters(submit.get("sparkSubmitParameters", ""))
        entry = work / "entry" / Path(submit["entryPoint"]).name  # the entry point alone, as on EMR
        entry.parent.mkdir(exist_ok=True)
        self._download(submit["entryPoint"], entry)
        for uri, alias in parameters.archives:
            link = work / alias
            link.unlink(missing_ok=True)
            link.symlink_to(self._unpacked(uri), target_is_directory=True)
        rt = self.runtime
        self.run.cores = rt.cores
        command = spark_submit.command(
            rt.spark_home,
            entry,
            list(submit.get("entryPointArguments", [])),
            parameters,
            cores=rt.cores,
            driver_memory=rt.driver_memory,
            extra_conf=spark_submit.s3a_conf(
                rt.s3_endpoint,
                rt.s3a_jars,
                rt.aws_env["AWS_ACCESS_KEY_ID"],
                rt.aws_env["AWS_SECRET_ACCESS_KEY"],
            ),
        )
        env = spark_submit.environment(
            dict(os.environ), rt.spark_home, parameters, rt.aws_env, work / "cache"
        )
        return command, env

    def _download(self, uri: str, target: Path) -> None:
        try:
            source = parse_s3(uri)
        except StorageError:
            source = None
        if source is None or not source.key:
            raise JobRunError(f"{uri} is not an s3:// object URI")
        try:
            self.runtime.s3.download_file(source.bucket, source.key, str(target))
        except Exception as error:
            raise JobRunError(f"cannot read {uri}: {error}") from error

    def _unpacked(self, uri: str) -> Path:
        """The archive at ``uri`` unpacked, cached by its S3 object (URI and ETag)."""
        try:
            source = parse_s3(uri)
            etag = self.runtime.s3.head_object(Bucket=source.bucket, Key=source.key)["ETag"]
        except Exception as error:
            raise JobRunError(f"cannot read archive {uri}: {error}") from error
        folder = (
            self.runtime.state_dir / "archives" / hashlib.sha256(f"{uri}{etag}".encode()).hexdigest()[:16]
        )
        if folder.is_dir():
            return folder
        scratch = folder.with_name(folder.name + f".{self.run.job_run_id}")
        scratch.mkdir(parents=True)
        packed = scratch / "archive.tar.gz"
        self._download(uri, packed)
        with tarfile.open(packed) as tar:
            tar.extractall(scratch / "unpacked", filter="fully_trusted")  # venv-pack links python outside
        packed.unlink()
        with contextlib.suppress(OSError):  # another run unpacked the same archive meanwhile
            (scratch / "unpacked").rename(folder)
        shutil.rmtree(scratch, ignore_errors=True)
        return folder

    def _spark_submit(self, command: list[str], env: dict[str, str], work: Path) -> int:
        timeout = self.run.execution_timeout_minutes * 60
        with (work / "stdout").open("wb") as stdout, (work / "stderr").open("wb") as stderr:
            process = subprocess.Popen(
                command, cwd=work, env=env, stdout=stdout, stderr=stderr, start_new_session=True
            )
            self.run.process = process
            self.run.started_at = time.time()
            self.set_state("RUNNING")
            while process.poll() is None:
                self._measure(process.pid)
                if time.time() - self.run.started_at > timeout and not self.run.cancel.is_set():
                    self.request_cancel(
                        f"Job run timed out after {self.run.execution_timeout_minutes} minutes"
                    )
                if self.run.cancel.is_set():
                    stop_process_group(process)
                time.sleep(0.5)
        return process.returncode

    def _measure(self, pid: int) -> None:
        """The run's memory so far: spark-submit's peak resident set (the JVM it becomes; the Python
        workers' are not added), as Linux keeps it in /proc (kB). Elsewhere it stays 0."""
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # ended since, or no /proc
            return
        peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), None)
        if peak is not None:
            self.run.memory_gb = max(self.run.memory_gb, int(peak) / 2**20)

    def _upload_logs(self, work: Path) -> None:
        monitoring = self.run.configuration_overrides.get("monitoringConfiguration", {})
        log_uri = monitoring.get("s3MonitoringConfiguration", {}).get("logUri")
        if not log_uri:
            return
        logs = parse_s3(log_uri)
        folder = f"{logs.key.rstrip('/')}/applications/{self.run.application_id}/jobs/{self.run.job_run_id}"
        for stream in ("stdout", "stderr"):
            source = work / stream
            body = gzip.compress(source.read_bytes() if source.exists() else b"")
            key = f"{folder.lstrip('/')}/SPARK_DRIVER/{stream}.gz"
            self.runtime.s3.put_object(Bucket=logs.bucket, Key=key, Body=body)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process and its children (spark-submit, the JVM, Python workers), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _last_exceptions(stderr: Path) -> str:
    if not stderr.exists():
        return ""
    lines = stderr.read_text(errors="replace").splitlines()
    found = [line.strip() for line in lines if EXCEPTION_LINE.match(line.strip())]
    return " | ".join(found[-3:])
