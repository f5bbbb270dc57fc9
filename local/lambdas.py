"""Lambda functions of the local stack: one long-lived process per function, invoked one event at a time.

Like Lambda: the handler is imported once (cold start) and reused; an invocation longer than the function's
Timeout kills the process (the next one starts a fresh environment); errors come back as ``FunctionError``
for the caller (event source mapping, asynchronous invocation, API) to handle as AWS would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from local.jobs import stop_process_group
from local.template import FunctionSpec

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
INIT_TIMEOUT_SECONDS = 120


class FunctionError(RuntimeError):
    """The handler raised, timed out, or its process died."""


class LocalFunction:
    def __init__(self, spec: FunctionSpec, environment: dict[str, str], log_dir: Path) -> None:
        self.spec = spec
        self.environment = environment
        self.log_path = log_dir / f"{spec.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> None:
        """Start the process and wait for the handler's import (cold start); raises if it fails."""
        with self.lock:
            self._start()

    def _start(self) -> None:
        env = {
            **self.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.spec.timeout_seconds),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.runtime", self.spec.handler],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        reply = self._read(INIT_TIMEOUT_SECONDS)
        if not reply["ok"]:
            self._kill()
            raise FunctionError(
                f"{self.spec.name} failed to initialize: {reply['errorType']}: {reply['errorMessage']} "
                f"(see {self.log_path})"
            )

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            assert self.process is not None and self.process.stdin is not None
            request = {
                "event": event,
                "request_id": str(uuid.uuid4()),
                "timeout_ms": self.spec.timeout_seconds * 1000,
            }
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            reply = self._read(self.spec.timeout_seconds)
        if not reply["ok"]:
            raise FunctionError(f"{self.spec.name}: {reply['errorType']}: {reply['errorMessage']}")
        return reply["result"]

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self._kill()
            what = f"Task timed out after {timeout:.0f} seconds" if not ready else "the process exited"
            raise FunctionError(f"{self.spec.name}: {what} (see {self.log_path})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _kill(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)  # type: ignore[arg-type]
            self.process = None

    def stop(self) -> None:
        with self.lock:
            if self.process is not None and self.process.stdin is not None:
                self.process.stdin.close()  # the runtime loop ends at EOF
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(5)
            self._kill()


def function_environment(
    spec: FunctionSpec, endpoints: dict[str, str], credentials: dict[str, str]
) -> dict[str, str]:
    """template.yaml's variables, plus what Lambda itself sets, with AWS pointed at the local services."""
    passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TZ") if name in os.environ}
    return (
        passed
        | credentials
        | spec.environment
        | {
            "AWS_ENDPOINT_URL": endpoints["aws"],
            "AWS_ENDPOINT_URL_EMR_SERVERLESS": endpoints["emr"],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "PYTHONUNBUFFERED": "1",
        }
    )
