"""Runs: ids, dataset names, S3 locations and the job options a run is started with.

Layout of the data bucket (see docs/control-plane.md):

    inbox/<dataset>/...             images dropped by users (and the optional inbox/<dataset>/_START marker)
    runs/<dataset>/<run_id>/...     one run's outputs, as described in docs/outputs.md
    logs/                           EMR Serverless logs (monitoringConfiguration logUri)
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

INBOX_PREFIX = "inbox/"
RUNS_PREFIX = "runs/"
START_MARKER = "_START"

# A dataset name is one path segment of inbox/<dataset>/; it becomes part of the run id, so it is restricted
# to characters that are safe in a run id ([A-Za-z0-9._-], see docs/outputs.md) and in an S3 key.
DATASET_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_RUN_ID_SUFFIX = re.compile(r"^(?P<dataset>.+)-(?P<stamp>\d{8}T\d{6})-(?P<hash>[0-9a-f]{8})$")


def is_valid_dataset(name: str) -> bool:
    return bool(DATASET_PATTERN.match(name)) and name not in {".", ".."}


def make_run_id(dataset: str, at: datetime, salt: str) -> str:
    """``<dataset>-<UTC yyyymmddThhmmss>-<8 hex>``: sorts by time within a dataset; safe in an S3 key.

    ``salt`` makes two runs of one dataset started in the same second differ; it must be deterministic for a
    given request so that a retried request mints the same id.
    """
    if not is_valid_dataset(dataset):
        raise ValueError(f"invalid dataset name {dataset!r}")
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha256(f"{dataset}|{stamp}|{salt}".encode()).hexdigest()[:8]
    return f"{dataset}-{stamp}-{digest}"


def dataset_of_run_id(run_id: str) -> str | None:
    match = _RUN_ID_SUFFIX.match(run_id)
    return match.group("dataset") if match else None


def client_token(application_id: str, run_id: str) -> str:
    """EMR Serverless idempotency token for one run (64 characters, the API's maximum).

    Derived from the run id, which is itself fixed by the request before EMR is called (the API claim or the
    dataset record), so any retry of the same request sends the same token and EMR starts no second job run.
    """
    return hashlib.sha256(f"{application_id}|{run_id}".encode()).hexdigest()


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def output_uri(data_bucket: str, dataset: str) -> str:
    """The job's --output: the run writes under <output>/<run_id>/ (docs/outputs.md)."""
    return f"s3://{data_bucket}/{RUNS_PREFIX}{dataset}/"


def run_prefix(dataset: str, run_id: str) -> str:
    return f"{RUNS_PREFIX}{dataset}/{run_id}/"


class JobOptions(BaseModel):
    """Options a caller may set; each maps to one job argument of docs/outputs.md. Unset means job default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    engine: Literal["onnx", "tensorflow"] | None = None
    pca_k: int | None = Field(default=None, ge=1, le=1280)
    pca_variance: float | None = Field(default=None, gt=0, lt=1)
    classify_on: Literal["scaled", "pca"] | None = None
    test_fraction: float | None = Field(default=None, gt=0, lt=1)
    seed: int | None = Field(default=None, ge=0)
    batch_size: int | None = Field(default=None, ge=1, le=4096)

    @model_validator(mode="after")
    def _one_pca_setting(self) -> JobOptions:
        if self.pca_k is not None and self.pca_variance is not None:
            raise ValueError("set pca_k or pca_variance, not both")
        return self

    def arguments(self) -> list[str]:
        """The job arguments for the options that are set, in docs/outputs.md order."""
        args: list[str] = []
        if self.engine is not None:
            args += ["--engine", self.engine]
        if self.pca_k is not None:
            args += ["--pca-k", str(self.pca_k)]
        if self.pca_variance is not None:
            args += ["--pca-variance", repr(self.pca_variance)]
        if self.classify_on is not None:
            args += ["--classify-on", self.classify_on]
        if self.test_fraction is not None:
            args += ["--test-fraction", repr(self.test_fraction)]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        if self.batch_size is not None:
            args += ["--batch-size", str(self.batch_size)]
        return args


class RunSpec(BaseModel):
    """One run to start: what to read, where to write, with which options, and why."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(pattern=RUN_ID_PATTERN.pattern)
    dataset: str = Field(pattern=DATASET_PATTERN.pattern)
    input_uri: str
    output_uri: str
    options: JobOptions = JobOptions()
    trigger: Literal["api", "drop"]
    requested_by: str = ""
