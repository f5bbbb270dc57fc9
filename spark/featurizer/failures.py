"""A failed run's record: `_FAILED.json`, with the error in one line a person can act on.

A failure in a Python worker reaches the driver as a Java exception wrapping the worker's traceback;
the line that ends that traceback says what went wrong, not the Py4J wrapper around it.
"""

from __future__ import annotations

import re
import traceback
from datetime import UTC, datetime
from typing import Any

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException

from featurizer.options import JobOptions

FAILED_FLAG = "_FAILED.json"
MESSAGE_CHARACTERS = 1000
TRACEBACK_CHARACTERS = 20_000

_JAVA_EXCEPTION = re.compile(r"^(?:Caused by: )?(?:[\w$]+\.)*(\w+(?:Error|Exception)): (.+)$")


def _python_exception_lines(text: str) -> list[str]:
    """The `Name: message` line that ends each Python traceback embedded in the text."""
    lines, found = text.splitlines(), []
    for index, line in enumerate(lines):
        if line.rstrip().endswith("Traceback (most recent call last):"):
            # Frames and source lines are indented; the first line that is not is the exception.
            end = next((c for c in lines[index + 1 :] if c and not c[0].isspace()), "")
            if ": " in end:
                found.append(end)
    return found


def error_summary(error: BaseException) -> tuple[str, str]:
    """(name, one-line message), also for errors raised inside Spark or its workers: the worker's own
    Python error first, else the JVM's last `SomeException: message` line, else the error itself."""
    text = str(error).strip()
    if isinstance(error, Py4JError | PySparkException):
        python = _python_exception_lines(text)
        if python:
            name, message = python[-1].split(": ", 1)
            return name.rsplit(".", 1)[-1], message.strip()[:MESSAGE_CHARACTERS]
        java = [m for line in text.splitlines() if (m := _JAVA_EXCEPTION.match(line.strip()))]
        if java:
            return java[-1].group(1), java[-1].group(2)[:MESSAGE_CHARACTERS]
    return type(error).__name__, (text.splitlines()[0] if text else type(error).__name__)[:MESSAGE_CHARACTERS]


def failure_record(options: JobOptions, stage: str | None, error: BaseException) -> dict[str, Any]:
    """The `_FAILED.json` payload of a run that stopped in `stage` (docs/outputs.md)."""
    name, message = error_summary(error)
    return {
        "status": "FAILED",
        "run_id": options.run_id,
        "output": options.run_uri,
        "finished_at": datetime.now(UTC).isoformat(),
        "stage": stage,
        "error": name,
        "message": message,
        "traceback": "".join(traceback.format_exception(error, limit=8))[-TRACEBACK_CHARACTERS:],
    }
