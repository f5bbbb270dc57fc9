"""The StartJobRun request: every --conf as one exact string; job arguments exactly per docs/outputs.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.emr import spark_submit_parameters, start_job_run_request
from common.runs import RunOptions, RunSpec, client_token, make_run_id
from tests.unit.settings import JOB_SETTINGS as SETTINGS
from tests.unit.settings import SIZING


def test_spark_submit_parameters_exact_string() -> None:
    assert spark_submit_parameters("featurizer-artifacts", "job/env-3f2a.tar.gz", SIZING, "eu-west-1") == (
        "--conf spark.archives=s3://featurizer-artifacts/job/env-3f2a.tar.gz#environment"
        " --conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python"
        " --conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python"
        " --conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python"
        " --conf spark.emr-serverless.driverEnv.AWS_REGION=eu-west-1"
        " --conf spark.emr-serverless.driverEnv.AWS_DEFAULT_REGION=eu-west-1"
        " --conf spark.executorEnv.AWS_REGION=eu-west-1"
        " --conf spark.executorEnv.AWS_DEFAULT_REGION=eu-west-1"
        " --conf spark.driver.cores=4"
        " --conf spark.driver.memory=14g"
        " --conf spark.executor.cores=4"
        " --conf spark.executor.memory=5g"
        " --conf spark.executor.memoryOverhead=3g"
        " --conf spark.task.cpus=1"
        " --conf spark.dynamicAllocation.enabled=true"
        " --conf spark.dynamicAllocation.minExecutors=1"
        " --conf spark.dynamicAllocation.maxExecutors=10"
    )


def test_start_job_run_request_matches_the_job_contract() -> None:
    run = RunSpec(
        run_id="flowers-20261124T100500-3f9a1c2e",
        dataset="flowers",
        input_uri="s3://featurizer-data/inbox/flowers/",
        output_uri="s3://featurizer-data/runs/flowers/",
        options=RunOptions(
            engine="tensorflow", pca_variance=0.95, classify_on="pca", test_fraction=0.25, seed=7
        ),
        trigger="api",
    )
    request = start_job_run_request(run, SETTINGS)
    assert request["applicationId"] == "00f1982r1uukb925"
    assert request["executionRoleArn"] == SETTINGS.job_role_arn
    assert request["name"] == run.run_id
    assert request["executionTimeoutMinutes"] == 120
    assert request["clientToken"] == client_token("00f1982r1uukb925", run.run_id)
    assert len(request["clientToken"]) == 64
    driver = request["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == "s3://featurizer-artifacts/job/main.py"
    assert driver["entryPointArguments"] == [
        "--input", "s3://featurizer-data/inbox/flowers/",
        "--output", "s3://featurizer-data/runs/flowers/",
        "--run-id", "flowers-20261124T100500-3f9a1c2e",
        "--weights", "s3://featurizer-artifacts/models/weights-9c1d.h5",
        "--engine", "tensorflow",
        "--pca-variance", "0.95",
        "--classify-on", "pca",
        "--test-fraction", "0.25",
        "--seed", "7",
    ]  # fmt: skip
    assert driver["sparkSubmitParameters"] == spark_submit_parameters(
        "featurizer-artifacts", "job/env-tf-77b0.tar.gz", SIZING, "eu-west-1"
    )
    assert request["configurationOverrides"] == {
        "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://featurizer-data/logs/"}}
    }
    assert request["tags"] == {
        "service": "image-featurizer",
        "dataset": "flowers",
        "run-id": run.run_id,
        "trigger": "api",
    }


def test_the_default_engine_gets_the_onnx_model_and_the_environment_without_tensorflow() -> None:
    run = RunSpec(
        run_id="flowers-20261124T100500-3f9a1c2e",
        dataset="flowers",
        input_uri="s3://featurizer-data/inbox/flowers/",
        output_uri="s3://featurizer-data/runs/flowers/",
        options=RunOptions(),
        trigger="drop",
    )

    driver = start_job_run_request(run, SETTINGS)["jobDriver"]["sparkSubmit"]

    assert driver["entryPointArguments"][6:] == [
        "--model",
        "s3://featurizer-artifacts/models/model-5e6f.onnx",
    ]
    assert driver["sparkSubmitParameters"].startswith(
        "--conf spark.archives=s3://featurizer-artifacts/job/env-3f2a.tar.gz#environment "
    )


def test_default_options_pass_no_optional_arguments() -> None:
    assert RunOptions().arguments() == []
    assert RunOptions(pca_k=20, batch_size=32).arguments() == ["--pca-k", "20", "--batch-size", "32"]


def test_run_ids_are_sortable_unique_and_path_safe() -> None:
    early = make_run_id("flowers", datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC), salt="a")
    same_second = make_run_id("flowers", datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC), salt="b")
    later = make_run_id("flowers", datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC), salt="a")
    assert early.startswith("flowers-20261124T100000-")
    assert early != same_second
    assert sorted([later, early]) == [early, later]
    for run_id in (early, same_second, later):
        assert all(c.isalnum() or c in "._-" for c in run_id)
    with pytest.raises(ValueError, match="invalid dataset"):
        make_run_id("no spaces", datetime(2026, 11, 24, tzinfo=UTC), salt="a")


def test_client_token_depends_only_on_the_run() -> None:
    assert client_token("app", "r1") == client_token("app", "r1")
    assert client_token("app", "r1") != client_token("app", "r2")
