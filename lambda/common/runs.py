"""Runs: ids, dataset names, S3 locations, and the options a caller may start a run with.

Layout of the data bucket (see docs/control-plane.md):

    inbox/<dataset>/...             images dropped by users (and the optional inbox/<dataset>/_START marker)
    inbox/<dataset>/_predict/<batch>/...
                                    images to classify with the dataset's latest trained run (a predict run
                                    per batch; the dataset's own runs skip "_" folders, as Spark does)
    runs/<dataset>/<run_id>/...     one run's outputs, as described in docs/outputs.md
    logs/                           EMR Serverless logs (monitoringConfiguration logUri)

The job parses the same options and run ids itself (spark/featurizer/options.py); the two planes cannot
share code, so tests/unit/test_contract.py proves that they accept the same values.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from common.plan import InputSize

INBOX_PREFIX = "inbox/"
RUNS_PREFIX = "runs/"
START_MARKER = "_START"
# The folder of a dataset's prediction batches: inbox/<dataset>/_predict/<batch>/ (common/drop_units.py).
PREDICT_FOLDER = "_predict"
# Datasets the drop-to-run pipeline leaves alone: packaging/selftest.py uploads there and starts the run.
SELF_TEST_PREFIX = "selftest-"
COMPLETED_FLAG = "_COMPLETED.json"
PROGRESS_FILE = "progress.json"  # the stage and images done while a run goes (spark/featurizer/progress.py)
FAILED_FLAG = "_FAILED.json"
# The states GET /runs/{run_id} gives a run besides EMR's job-run states, and those in which it has ended.
STARTING, START_FAILED, COMPLETED, FAILED = "STARTING", "START_FAILED", "COMPLETED", "FAILED"
ENDED_STATES = frozenset({START_FAILED, COMPLETED, FAILED, "CANCELLED"})

# A dataset name is one path segment of inbox/<dataset>/ and the start of its run ids, so it is restricted
# to characters that are safe in a run id and in an S3 key. Both patterns are matched whole (fullmatch).
DATASET_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Inclusive bounds of the numeric options (docs/outputs.md gives the reasons).
PCA_K_BOUNDS = (1, 1280)
FRACTION_BOUNDS = (0.001, 0.999)
SEED_BOUNDS = (0, 2**31 - 1)
BATCH_SIZE_BOUNDS = (1, 256)
MAX_IMAGE_BYTES_BOUNDS = (1, 2**30)
MAX_IMAGE_PIXELS_BOUNDS = (1, 2**30)
FIT_MAX_IMAGES_BOUNDS = (10, 10**9)
FIT_MAX_PER_CLASS_BOUNDS = (1, 10**9)
REG_PARAM_BOUNDS = (0.0, 1000.0)
MAX_ITER_BOUNDS = (1, 1000)
# The options that choose the train/test split or the features: a refit keeps its source run's, so it
# takes none of them (the job's copy is spark/featurizer/options.py's; a contract test compares them).
REFIT_KEEPS = ("test_fraction", "seed", "engine", "precision")
# The options a predict run (predict_with) does not take: the trained run's model and pipeline decide the
# features and the classes (the job's copy is spark/featurizer/options.py's; a contract test compares them).
PREDICT_REFUSES = (
    *REFIT_KEEPS,
    "pca_k",
    "pca_variance",
    "classify_on",
    "fit_max_images",
    "fit_max_per_class",
    "reg_param",
    "max_iter",
    "self_test",
)


def is_valid_dataset(name: str) -> bool:
    return DATASET_PATTERN.fullmatch(name) is not None


def is_valid_run_id(run_id: str) -> bool:
    return RUN_ID_PATTERN.fullmatch(run_id) is not None


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


def client_token(application_id: str, run_id: str) -> str:
    """EMR Serverless idempotency token for one run (64 characters, the API's maximum).

    Derived from the run id, which is itself fixed by the request before EMR is called (the API claim or the
    dataset record), so any retry of the same request sends the same token and EMR starts no second job run.
    """
    return hashlib.sha256(f"{application_id}|{run_id}".encode()).hexdigest()


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI; ValueError for anything else."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key


def output_uri(data_bucket: str, dataset: str) -> str:
    """The job's --output: the run writes under <output>/<run_id>/ (docs/outputs.md)."""
    return f"s3://{data_bucket}/{RUNS_PREFIX}{dataset}/"


def run_prefix(dataset: str, run_id: str) -> str:
    return f"{RUNS_PREFIX}{dataset}/{run_id}/"


def _within(bounds: tuple[float, float]) -> Any:
    """An optional field bounded by ``bounds`` (inclusive)."""
    low, high = bounds
    return Field(default=None, ge=low, le=high)


class RunOptions(BaseModel):
    """Options a caller may set; each maps to one job argument of docs/outputs.md. Unset means job default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    engine: Literal["onnx", "tensorflow"] | None = None
    precision: Literal["fp32", "int8"] | None = None  # int8: the deployment's Int8ModelKey
    pca_k: int | None = _within(PCA_K_BOUNDS)
    pca_variance: float | None = _within(FRACTION_BOUNDS)
    classify_on: Literal["scaled", "pca"] | None = None
    test_fraction: float | None = _within(FRACTION_BOUNDS)
    seed: int | None = _within(SEED_BOUNDS)
    batch_size: int | None = _within(BATCH_SIZE_BOUNDS)
    max_image_bytes: int | None = _within(MAX_IMAGE_BYTES_BOUNDS)
    max_image_pixels: int | None = _within(MAX_IMAGE_PIXELS_BOUNDS)
    fit_max_images: int | None = _within(FIT_MAX_IMAGES_BOUNDS)
    fit_max_per_class: int | None = _within(FIT_MAX_PER_CLASS_BOUNDS)
    reg_param: float | None = _within(REG_PARAM_BOUNDS)
    max_iter: int | None = _within(MAX_ITER_BOUNDS)
    no_store: bool | None = None
    self_test: bool | None = None

    @model_validator(mode="after")
    def _one_pca_setting(self) -> RunOptions:
        if self.pca_k is not None and self.pca_variance is not None:
            raise ValueError("set pca_k or pca_variance, not both")
        if self.precision == "int8" and self.engine == "tensorflow":
            raise ValueError("precision int8 is an ONNX model for engine onnx; engine tensorflow runs fp32")
        return self

    def arguments(self) -> list[str]:
        """The job arguments for the options that are set, in docs/outputs.md order.

        Numbers are written as Python writes them (``repr`` of a float is its shortest exact form), so the
        job parses back the very value the caller sent.
        """
        args: list[str] = []
        for name, value in self.model_dump(exclude_none=True).items():
            flag = f"--{name.replace('_', '-')}"
            if isinstance(value, bool):  # a switch: on or left out
                args += [flag] if value else []
            else:
                args += [flag, repr(value) if isinstance(value, float) else str(value)]
        return args


class RunSpec(BaseModel):
    """One run to start: what to read, where to write, with which options, and why."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    dataset: str
    input_uri: str
    output_uri: str
    options: RunOptions = RunOptions()
    trigger: Literal["api", "drop"]
    requested_by: str = ""
    input_size: InputSize | None = None  # None: not counted; sized as the template says
    from_run: str | None = None  # a refit's source: a completed run of the same dataset
    predict_with: str | None = None  # a predict run's trained run: a completed run of any dataset
    predict_with_uri: str | None = None  # that run's output folder, from its record

    @property
    def from_run_uri(self) -> str | None:
        return f"{self.output_uri}{self.from_run}/" if self.from_run else None

    @model_validator(mode="after")
    def _predicts_from_a_folder(self) -> RunSpec:
        if (self.predict_with is None) != (self.predict_with_uri is None):
            raise ValueError("predict_with and predict_with_uri go together: the trained run and its folder")
        return self

    @field_validator("run_id", "dataset")
    @classmethod
    def _path_safe(cls, value: str, info: ValidationInfo) -> str:
        """A run id or dataset name goes into S3 keys and the job's arguments: only the documented form."""
        valid = is_valid_run_id if info.field_name == "run_id" else is_valid_dataset
        if not valid(value):
            raise ValueError(f"invalid {info.field_name} {value!r}")
        return value
