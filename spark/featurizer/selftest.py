"""A self-test run's own checks: what the job's role may and may not do on S3, and what the workers run.

Asked for with `--self-test` (packaging/selftest.py starts such runs and judges their manifest). The checks
are the job's own S3 requests, so they are made with the job's own role: each is recorded with what it
should get and what it got. A request the role must be allowed that is refused stops the run before any
Spark work (InputError, naming the permission); one it must be refused that is allowed is recorded, and
judged by the self-test (the local stack enforces only the role's S3 statements: local/iam.py).
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import SparkSession

from featurizer import storage
from featurizer.options import JobOptions

PROBE = "_self-test-probe/"  # a folder placeholder: the drop-to-run pipeline ignores it (no run starts)
PACKAGES = ("numpy", "onnxruntime", "opencv-python-headless", "pyarrow", "pandas", "boto3")


class AccessCheckFailed(RuntimeError):
    """The job's role was refused something it must be allowed; the message names it."""


@dataclass(frozen=True)
class AccessCheck:
    check: str
    uri: str
    expected: str  # "allowed" or "refused"
    observed: str  # "allowed", "refused", or the error of a request that failed otherwise
    detail: str = ""  # S3's refusal, as the job reports it

    @property
    def passed(self) -> bool:
        return self.observed == self.expected


def _attempt(check: str, uri: str, expected: str, request: Callable[[], object]) -> AccessCheck:
    try:
        request()
    except storage.AccessDenied as refusal:
        return AccessCheck(check, uri, expected, "refused", str(refusal))
    except Exception as error:  # a check must report what happened, not stop at the first surprise
        return AccessCheck(check, uri, expected, f"error: {type(error).__name__}: {error}")
    return AccessCheck(check, uri, expected, "allowed")


def _write_and_delete(uri: str) -> None:
    storage.write_bytes(uri, b"")
    storage.delete_tree(uri)


def _refused_write(check: str, uri: str) -> AccessCheck:
    """A write the role must be refused, judged on the write alone: if it was allowed, the probe is
    deleted where the role may, and named where it may not."""
    found = _attempt(check, uri, "refused", lambda: storage.write_bytes(uri, b""))
    if found.observed != "allowed":
        return found
    try:
        storage.delete_tree(uri)
    except Exception as error:  # the write went through; say what was left behind
        return AccessCheck(check, uri, "refused", "allowed", f"the probe could not be deleted: {error}")
    return found


def _first_file(folder: str) -> str:
    for uri, _ in storage.iter_sizes(folder):
        return uri
    raise FileNotFoundError(f"no file under {folder}")


def access_checks(options: JobOptions) -> list[AccessCheck]:
    """Read the input, write the run's folder, and try to write where the role must not: the input and,
    for an s3:// model, the artifacts. Raises AccessCheckFailed when an allowed request is refused."""
    if not storage.is_s3(options.input):
        return []
    probe = storage.join(options.input, PROBE) + "/"
    checks = [
        _attempt("list the input", options.input, "allowed", lambda: storage.folder_has_files(options.input)),
        _attempt(
            "read an input image",
            options.input,
            "allowed",
            lambda: storage.read_bytes(_first_file(options.input)),
        ),
        _attempt(
            "write the run's folder",
            options.run_uri,
            "allowed",
            lambda: _write_and_delete(storage.join(options.run_uri, PROBE) + "/"),
        ),
        _refused_write("write into the input", probe),
    ]
    if options.model and storage.is_s3(options.model):
        artifacts = options.model.rsplit("/", 1)[0] + "/" + PROBE
        checks.append(_refused_write("write into the artifacts", artifacts))
    refused = [c for c in checks if c.expected == "allowed" and not c.passed]
    if refused:
        raise AccessCheckFailed(
            "; ".join(f"the job's role could not {c.check}: {c.detail or c.observed}" for c in refused)
        )
    return checks


def _versions(_: Iterator[object]) -> Iterator[dict[str, str]]:
    """What one Python worker runs (a function Spark ships to the executors)."""
    found = {"python": platform.python_version(), "executable": sys.executable, "machine": platform.machine()}
    found |= {name: importlib.metadata.version(name) for name in PACKAGES}
    found["region"] = storage.region() or ""
    yield found


def worker_environments(spark: SparkSession, tasks: int) -> list[dict[str, str]]:
    """The distinct Python environments `tasks` tasks ran in, as their workers report them."""
    rows = spark.sparkContext.parallelize(range(tasks), tasks).mapPartitions(_versions).collect()
    return [dict(items) for items in sorted({tuple(sorted(row.items())) for row in rows})]


def report(checks: list[AccessCheck], workers: list[dict[str, str]]) -> dict[str, Any]:
    """The manifest's `self_test` section."""
    return {"access": [asdict(c) | {"passed": c.passed} for c in checks], "workers": workers}
