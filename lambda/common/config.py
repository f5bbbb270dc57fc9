"""Configuration read once from the environment variables that template.yaml sets.

Every setting is required: a missing variable raises ``MissingConfigurationError`` naming it when the handler
module is imported (cold start), never later in the middle of a request.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from common.cost import ARCHITECTURES
from common.errors import MissingConfigurationError
from common.plan import PRICES, Capacity, Limits, Prices, Workers


def env(name: str) -> str:
    """The value of a required environment variable."""
    try:
        value = os.environ[name]
    except KeyError:
        raise MissingConfigurationError(name) from None
    if not value.strip():
        raise MissingConfigurationError(name, "is empty")
    return value


def env_optional(name: str) -> str | None:
    """An environment variable the template always sets, but may set empty (a part not deployed)."""
    if name not in os.environ:
        raise MissingConfigurationError(name)
    return os.environ[name].strip() or None


def env_architecture(name: str) -> str:
    raw = env(name)
    if raw not in ARCHITECTURES:
        raise MissingConfigurationError(name, f"must be one of {', '.join(ARCHITECTURES)}, got {raw!r}")
    return ARCHITECTURES[raw]


def env_prices(published: Prices) -> Prices:
    """The published prices, each replaced by its template parameter where that is set (USD)."""
    given = {}
    for field, name in (
        ("vcpu_hour", "PRICE_VCPU_HOUR"),
        ("gb_hour", "PRICE_GB_HOUR"),
        ("storage_gb_hour", "PRICE_STORAGE_GB_HOUR"),
    ):
        raw = env_optional(name)
        if raw is None:
            continue
        try:
            given[field] = float(raw)
        except ValueError:
            raise MissingConfigurationError(
                name, f"must be a price in USD like 0.052624, got {raw!r}"
            ) from None
        if not given[field] >= 0:
            raise MissingConfigurationError(name, f"must be a price of 0 or more, got {raw!r}")
    return Prices(**{**asdict(published), **given})


def env_int(name: str) -> int:
    raw = env(name)
    try:
        return int(raw)
    except ValueError:
        raise MissingConfigurationError(name, f"must be an integer, got {raw!r}") from None


# EMR Serverless adds this share of the driver's heap beside it (at least OVERHEAD_MIN_MB): the heap is
# what that leaves of the driver's worker.
DRIVER_OVERHEAD_SHARE = 0.10
OVERHEAD_MIN_MB = 384


def env_gigabytes(name: str) -> int:
    raw = env(name)
    if not (raw.endswith("g") and raw[:-1].isdigit()):
        raise MissingConfigurationError(name, f"must be a whole number of GB like 8g, got {raw!r}")
    return int(raw[:-1])


def env_quantity(name: str, unit: str) -> int:
    """A capacity as EMR Serverless writes it, ``64 vCPU`` or ``256 GB`` (the unit may be left out)."""
    raw = env(name)
    matched = re.fullmatch(rf"(\d+)\s*(?:{unit})?", raw.strip(), re.IGNORECASE)
    if matched is None:
        raise MissingConfigurationError(name, f"must be a whole number of {unit} like 64 {unit}, got {raw!r}")
    return int(matched[1])


@dataclass(frozen=True)
class WorkerSizing:
    """Spark driver/executor sizing, derived from the EMR Serverless workers' sizes the template gives."""

    driver_cores: int
    driver_worker_gb: int
    driver_memory: str  # JVM heap: what EMR's overhead leaves of the driver's worker
    executor_cores: int
    executor_worker_gb: int
    executor_memory: str  # JVM heap: the executor's worker less its overhead
    executor_memory_overhead: str  # where the Python workers run
    min_executors: int
    max_executors: int

    @classmethod
    def from_env(cls) -> WorkerSizing:
        driver_worker_mb = env_gigabytes("DRIVER_WORKER_MEMORY") * 1024
        executor_worker, overhead = (
            env_gigabytes("EXECUTOR_WORKER_MEMORY"),
            env_gigabytes("SPARK_EXECUTOR_MEMORY_OVERHEAD"),
        )
        if executor_worker - overhead < 1:
            raise MissingConfigurationError(
                "SPARK_EXECUTOR_MEMORY_OVERHEAD",
                f"({overhead}g) must leave the executor's JVM at least 1g of its {executor_worker}g worker",
            )
        driver_heap_mb = min(
            driver_worker_mb - OVERHEAD_MIN_MB, int(driver_worker_mb / (1 + DRIVER_OVERHEAD_SHARE))
        )
        return cls(
            driver_cores=env_int("SPARK_DRIVER_CORES"),
            driver_worker_gb=driver_worker_mb // 1024,
            driver_memory=f"{driver_heap_mb}m",
            executor_cores=env_int("SPARK_EXECUTOR_CORES"),
            executor_worker_gb=executor_worker,
            executor_memory=f"{executor_worker - overhead}g",
            executor_memory_overhead=f"{overhead}g",
            min_executors=env_int("SPARK_MIN_EXECUTORS"),
            max_executors=env_int("SPARK_MAX_EXECUTORS"),
        )


@dataclass(frozen=True)
class JobSettings:
    """Everything needed to start the featurizer job on EMR Serverless."""

    application_id: str
    region: str
    job_role_arn: str
    data_bucket: str
    artifacts_bucket: str
    entry_point_key: str
    env_archive_key: str
    tensorflow_env_archive_key: str | None  # None: no TensorFlow environment was deployed
    model_key: str
    int8_model_key: str | None  # None: no INT8 model was deployed
    weights_key: str
    log_prefix: str
    execution_timeout_minutes: int
    sizing: WorkerSizing
    capacity: Capacity  # the application's MaximumCapacity
    architecture: str = "x86_64"  # the workers' (PRICES' key)
    prices: Prices = PRICES["x86_64"]  # what a run's billed hours cost
    emulated: bool = False  # the EMR endpoint is not AWS's (the local stack): costs are estimates

    @classmethod
    def from_env(cls) -> JobSettings:
        return cls(
            application_id=env("EMR_APPLICATION_ID"),
            region=env("AWS_REGION"),  # set by the Lambda runtime
            job_role_arn=env("JOB_ROLE_ARN"),
            data_bucket=env("DATA_BUCKET"),
            artifacts_bucket=env("ARTIFACTS_BUCKET"),
            entry_point_key=env("ENTRY_POINT_KEY"),
            env_archive_key=env("ENV_ARCHIVE_KEY"),
            tensorflow_env_archive_key=env_optional("TENSORFLOW_ENV_ARCHIVE_KEY"),
            model_key=env("MODEL_KEY"),
            int8_model_key=env_optional("INT8_MODEL_KEY"),
            weights_key=env("WEIGHTS_KEY"),
            log_prefix=env("LOG_PREFIX"),
            execution_timeout_minutes=env_int("EXECUTION_TIMEOUT_MINUTES"),
            sizing=WorkerSizing.from_env(),
            capacity=Capacity(
                vcpu=env_quantity("MAXIMUM_CPU", "vCPU"),
                memory_gb=env_quantity("MAXIMUM_MEMORY", "GB"),
                disk_gb=env_quantity("MAXIMUM_DISK", "GB"),
            ),
            architecture=(architecture := env_architecture("ARCHITECTURE")),
            prices=env_prices(PRICES[architecture]),
            emulated="AWS_ENDPOINT_URL_EMR_SERVERLESS" in os.environ,
        )

    @property
    def limits(self) -> Limits:
        """What a run's plan stays within (common/plan.py)."""
        sizing = self.sizing
        workers = Workers(
            sizing.driver_cores, sizing.driver_worker_gb, sizing.executor_cores, sizing.executor_worker_gb
        )
        return Limits(workers, self.capacity, sizing.max_executors, self.execution_timeout_minutes)

    @property
    def log_uri(self) -> str:
        return f"s3://{self.data_bucket}/{self.log_prefix.strip('/')}/"

    def job_log_uri(self, job_run_id: str) -> str:
        """Where EMR Serverless writes one job run's logs under the monitoring logUri."""
        return f"{self.log_uri}applications/{self.application_id}/jobs/{job_run_id}/"


@dataclass(frozen=True)
class StateSettings:
    """The DynamoDB table holding idempotency records, run records and per-dataset debounce state."""

    table_name: str
    idempotency_ttl_seconds: int

    def idempotency(self, key: str) -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
        """Powertools idempotency records in this table, keyed by the `key` field of the guarded call's
        argument (its absence is an error: every guarded call must be keyed)."""
        persistence = DynamoDBPersistenceLayer(table_name=self.table_name, key_attr="pk")
        config = IdempotencyConfig(
            event_key_jmespath=key,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=self.idempotency_ttl_seconds,
        )
        return persistence, config

    @classmethod
    def from_env(cls) -> StateSettings:
        return cls(
            table_name=env("STATE_TABLE"),
            idempotency_ttl_seconds=env_int("IDEMPOTENCY_TTL_SECONDS"),
        )


@dataclass(frozen=True)
class DebounceSettings:
    quiet_seconds: int
    topic_arn: str
    uploads_queue_url: str  # the sweep reads its backlog: a backlog is never taken for quiet uploads

    @classmethod
    def from_env(cls) -> DebounceSettings:
        return cls(
            quiet_seconds=env_int("QUIET_SECONDS"),
            topic_arn=env("TOPIC_ARN"),
            uploads_queue_url=env("UPLOADS_QUEUE_URL"),
        )


@dataclass(frozen=True)
class AccessSettings:
    """Who may see which runs through the API, and how many runs one caller may have in flight."""

    operator_role_arn: str | None  # its sessions may read and cancel every run
    max_runs_in_flight_per_caller: int

    @classmethod
    def from_env(cls) -> AccessSettings:
        return cls(
            operator_role_arn=env_optional("OPERATOR_ROLE_ARN"),
            max_runs_in_flight_per_caller=env_int("MAX_RUNS_IN_FLIGHT_PER_CALLER"),
        )
