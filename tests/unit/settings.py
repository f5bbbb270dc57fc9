"""A control plane's job settings as template.yaml's defaults make them, for tests that build requests."""

from __future__ import annotations

from common.config import JobSettings, WorkerSizing
from common.plan import Capacity

SIZING = WorkerSizing(
    driver_cores=4,
    driver_worker_gb=16,
    driver_memory="14g",
    executor_cores=4,
    executor_worker_gb=8,
    executor_memory="5g",
    executor_memory_overhead="3g",
    min_executors=1,
    max_executors=10,
)
JOB_SETTINGS = JobSettings(
    application_id="00f1982r1uukb925",
    region="eu-west-1",
    job_role_arn="arn:aws:iam::123456789012:role/featurizer-JobRuntimeRole",
    data_bucket="featurizer-data",
    artifacts_bucket="featurizer-artifacts",
    entry_point_key="job/main.py",
    env_archive_key="job/env-3f2a.tar.gz",
    tensorflow_env_archive_key="job/env-tf-77b0.tar.gz",
    model_key="models/model-5e6f.onnx",
    int8_model_key="models/model-5e6f.int8.onnx",
    weights_key="models/weights-9c1d.h5",
    log_prefix="logs/",
    execution_timeout_minutes=120,
    sizing=SIZING,
    capacity=Capacity(vcpu=64, memory_gb=256, disk_gb=1000),
)
