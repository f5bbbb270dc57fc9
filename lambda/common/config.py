"""Configuration read once from the environment variables that template.yaml sets.

Every setting is required: a missing variable raises ``MissingConfigurationError`` naming it when the handler
module is imported (cold start), never later in the middle of a request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from common.errors import MissingConfigurationError


def env(name: str) -> str:
    """The value of a required environment variable."""
    try:
        value = os.environ[name]
    except KeyError:
        raise MissingConfigurationError(name) from None
    if not value.strip():
        raise MissingConfigurationError(name, "is empty")
    return value


def env_int(name: str) -> int:
    raw = env(name)
    try:
        return int(raw)
    except ValueError:
        raise MissingConfigurationError(name, f"must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class WorkerSizing:
    """Spark driver/executor sizing for EMR Serverless workers."""

    driver_cores: int
    driver_memory: str
    executor_cores: int
    executor_memory: str
    executor_memory_overhead: str
    min_executors: int
    max_executors: int

    @classmethod
    def from_env(cls) -> WorkerSizing:
        return cls(
            driver_cores=env_int("SPARK_DRIVER_CORES"),
            driver_memory=env("SPARK_DRIVER_MEMORY"),
            executor_cores=env_int("SPARK_EXECUTOR_CORES"),
            executor_memory=env("SPARK_EXECUTOR_MEMORY"),
            executor_memory_overhead=env("SPARK_EXECUTOR_MEMORY_OVERHEAD"),
            min_executors=env_int("SPARK_MIN_EXECUTORS"),
            max_executors=env_int("SPARK_MAX_EXECUTORS"),
        )


@dataclass(frozen=True)
class JobSettings:
    """Everything needed to start the featurizer job on EMR Serverless."""

    application_id: str
    job_role_arn: str
    data_bucket: str
    artifacts_bucket: str
    entry_point_key: str
    env_archive_key: str
    tensorflow_env_archive_key: str
    model_key: str
    weights_key: str
    log_prefix: str
    execution_timeout_minutes: int
    sizing: WorkerSizing

    @classmethod
    def from_env(cls) -> JobSettings:
        return cls(
            application_id=env("EMR_APPLICATION_ID"),
            job_role_arn=env("JOB_ROLE_ARN"),
            data_bucket=env("DATA_BUCKET"),
            artifacts_bucket=env("ARTIFACTS_BUCKET"),
            entry_point_key=env("ENTRY_POINT_KEY"),
            env_archive_key=env("ENV_ARCHIVE_KEY"),
            tensorflow_env_archive_key=env("TENSORFLOW_ENV_ARCHIVE_KEY"),
            model_key=env("MODEL_KEY"),
            weights_key=env("WEIGHTS_KEY"),
            log_prefix=env("LOG_PREFIX"),
            execution_timeout_minutes=env_int("EXECUTION_TIMEOUT_MINUTES"),
            sizing=WorkerSizing.from_env(),
        )

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

    @classmethod
    def from_env(cls) -> DebounceSettings:
        return cls(quiet_seconds=env_int("QUIET_SECONDS"), topic_arn=env("TOPIC_ARN"))
