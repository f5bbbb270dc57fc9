"""The StartJobRun request: every --conf as one exact string; job arguments exactly per docs/outputs.md;
executors, their disk and the timeout sized from the input's count."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from common.emr import spark_submit_parameters, start_job_run_request
from common.errors import RunStartError
from common.plan import InputSize, Sizing, plan_run
from common.runs import RunOptions, RunSpec, client_token, make_run_id
from local.spark_submit import parse_parameters
from tests.unit.settings import JOB_SETTINGS as SETTINGS
from tests.unit.settings import SIZING


def test_spark_submit_parameters_exact_string() -> None:
    run_sizing = Sizing(executors=7, executor_disk_gb=60, timeout_minutes=300)

    assert spark_submit_parameters(
        "featurizer-artifacts", "job/env-3f2a.tar.gz", SIZING, run_sizing, "eu-west-1"
    ) == (
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
        " --conf spark.dynamicAllocation.maxExecutors=7"
        " --conf spark.emr-serverless.executor.disk=60G"
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
    assert driver["sparkSubmitParameters"] == spark_submit_parameters(  # not counted: the template's sizing
        "featurizer-artifacts", "job/env-tf-77b0.tar.gz", SIZING, Sizing(10, 20, 120), "eu-west-1"
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


def test_an_int8_run_gets_the_int8_model_and_none_is_started_where_it_is_not_deployed() -> None:
    run = RunSpec(
        run_id="flowers-20261124T100500-3f9a1c2e",
        dataset="flowers",
        input_uri="s3://featurizer-data/inbox/flowers/",
        output_uri="s3://featurizer-data/runs/flowers/",
        options=RunOptions(precision="int8"),
        trigger="api",
    )

    arguments = start_job_run_request(run, SETTINGS)["jobDriver"]["sparkSubmit"]["entryPointArguments"]

    assert arguments[6:] == [
        "--model",
        "s3://featurizer-artifacts/models/model-5e6f.int8.onnx",
        "--precision",
        "int8",
    ]
    with pytest.raises(RunStartError, match="asks for precision int8, and no INT8 model is deployed"):
        start_job_run_request(run, replace(SETTINGS, int8_model_key=None))


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


def counted_run(images: int, bytes_per_image: int) -> RunSpec:
    return RunSpec(
        run_id="flowers-20261124T100500-3f9a1c2e",
        dataset="flowers",
        input_uri="s3://featurizer-data/inbox/flowers/",
        output_uri="s3://featurizer-data/runs/flowers/",
        trigger="api",
        input_size=InputSize(images, images * bytes_per_image),
    )


def test_a_counted_input_sizes_the_executors_their_disk_and_the_timeout() -> None:
    """As the local EMR (and spark-submit) read the parameters back."""
    large = counted_run(10**8, 899_000)
    request = start_job_run_request(large, SETTINGS)
    conf = parse_parameters(request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]).conf

    planned = plan_run(large.input_size, SETTINGS.limits).sizing
    assert conf["spark.dynamicAllocation.maxExecutors"] == str(planned.executors) == "10"
    assert conf["spark.emr-serverless.executor.disk"] == f"{planned.executor_disk_gb}G"
    assert request["executionTimeoutMinutes"] == planned.timeout_minutes > SETTINGS.execution_timeout_minutes


def test_a_small_input_asks_for_one_executor_whatever_minexecutors_says() -> None:
    settings = replace(SETTINGS, sizing=replace(SIZING, min_executors=3))
    request = start_job_run_request(counted_run(500, 5_000), settings)
    conf = parse_parameters(request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]).conf

    assert conf["spark.dynamicAllocation.minExecutors"] == conf["spark.dynamicAllocation.maxExecutors"] == "1"
    assert conf["spark.emr-serverless.executor.disk"] == "20G"
    assert request["executionTimeoutMinutes"] == SETTINGS.execution_timeout_minutes
