"""The EMR Serverless StartJobRun request for one featurizer run, and starting it.

Spark property names are those documented for EMR Serverless:
- Python virtual environment shipped with ``spark.archives=<archive>#environment``, the interpreter set with
  ``spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON``, ``spark.emr-serverless.driverEnv.PYSPARK_PYTHON``
  (driver) and ``spark.executorEnv.PYSPARK_PYTHON`` (executors):
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/using-python-libraries.html
- Worker sizing ``spark.driver.cores``, ``spark.driver.memory``, ``spark.executor.cores``,
  ``spark.executor.memory``, ``spark.executor.memoryOverhead`` (the Python workers live there) and
  dynamic allocation bounds ``spark.dynamicAllocation.minExecutors`` /
  ``spark.dynamicAllocation.maxExecutors`` (table "Spark defaults"):
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/jobs-spark.html
- each executor's disk ``spark.emr-serverless.executor.disk`` (same table; 20G by default, 20 to 200 GB a
  worker: app-behavior.html, "Supported worker configurations")
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from common import records
from common.config import JobSettings, WorkerSizing
from common.errors import RunStartError
from common.plan import Sizing, sizing_for
from common.runs import RunSpec, client_token

ENVIRONMENT_PYTHON = "./environment/bin/python"
ARN = re.compile(r"arn:[\w:/.+=,@*-]+")
# boto3 reads AWS_DEFAULT_REGION; the AWS SDK for Java (EMRFS) and other tools read AWS_REGION.
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")

logger = Logger(child=True)


def spark_submit_parameters(
    artifacts_bucket: str, env_archive_key: str, sizing: WorkerSizing, run_sizing: Sizing, region: str
) -> str:
    """Every ``--conf`` of the job, in one place (tested as an exact string). `run_sizing` is the run's
    plan (common/plan.py): its executors and their disk grow with the input.

    The region is given to the driver and the executors: their boto3 clients (the listing, the workers'
    reads) must not depend on what the worker's environment happens to set.

    One task per executor core, each running inference on one thread (the job reads spark.task.cpus), so
    that decoding runs on every core at once (docs/performance.md).
    """
    conf = [
        f"spark.archives=s3://{artifacts_bucket}/{env_archive_key}#environment",
        f"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={ENVIRONMENT_PYTHON}",
        f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={ENVIRONMENT_PYTHON}",
        f"spark.executorEnv.PYSPARK_PYTHON={ENVIRONMENT_PYTHON}",
        *(f"spark.emr-serverless.driverEnv.{name}={region}" for name in REGION_VARIABLES),
        *(f"spark.executorEnv.{name}={region}" for name in REGION_VARIABLES),
        f"spark.driver.cores={sizing.driver_cores}",
        f"spark.driver.memory={sizing.driver_memory}",
        f"spark.executor.cores={sizing.executor_cores}",
        f"spark.executor.memory={sizing.executor_memory}",
        f"spark.executor.memoryOverhead={sizing.executor_memory_overhead}",
        "spark.task.cpus=1",
        "spark.dynamicAllocation.enabled=true",
        f"spark.dynamicAllocation.minExecutors={min(sizing.min_executors, run_sizing.executors)}",
        f"spark.dynamicAllocation.maxExecutors={run_sizing.executors}",
        f"spark.emr-serverless.executor.disk={run_sizing.executor_disk_gb}G",
    ]
    return " ".join(f"--conf {item}" for item in conf)


def _uses_tensorflow(run: RunSpec) -> bool:
    return run.options.engine == "tensorflow"


def entry_point_arguments(run: RunSpec, settings: JobSettings) -> list[str]:
    """The job's command line, exactly as docs/outputs.md describes it.

    The default onnx engine loads the prebuilt ONNX model (`--model`), so its environment needs no
    TensorFlow; the tensorflow engine reads the Keras weights (`--weights`) in the TensorFlow environment.
    """
    if run.predict_with_uri:  # the job predicts with the trained run's own model file
        model = ["--model-run", run.predict_with_uri]
    elif _uses_tensorflow(run):
        model = ["--weights", f"s3://{settings.artifacts_bucket}/{settings.weights_key}"]
    else:
        model = ["--model", f"s3://{settings.artifacts_bucket}/{model_key(run, settings)}"]
    return [
        "--input",
        run.input_uri,
        "--output",
        run.output_uri,
        "--run-id",
        run.run_id,
        *model,
        *(["--from-run", run.from_run_uri] if run.from_run_uri else []),
        *run.options.arguments(),
    ]


def model_key(run: RunSpec, settings: JobSettings) -> str:
    """The ONNX model of the run's precision: the INT8 one only where it was deployed."""
    if run.options.precision != "int8":
        return settings.model_key
    if settings.int8_model_key is None:
        raise RunStartError(f"run {run.run_id} asks for precision int8, and no INT8 model is deployed")
    return settings.int8_model_key


def environment_archive_key(run: RunSpec, settings: JobSettings) -> str:
    if not _uses_tensorflow(run):
        return settings.env_archive_key
    if settings.tensorflow_env_archive_key is None:
        raise RunStartError(
            f"run {run.run_id} asks for engine tensorflow, and no TensorFlow environment is deployed"
        )
    return settings.tensorflow_env_archive_key


def start_job_run_request(run: RunSpec, settings: JobSettings) -> dict[str, Any]:
    """Keyword arguments of boto3 ``emr-serverless`` ``start_job_run`` for one run."""
    run_sizing = sizing_for(run.input_size, settings.limits)
    return {
        "applicationId": settings.application_id,
        "clientToken": client_token(settings.application_id, run.run_id),
        "executionRoleArn": settings.job_role_arn,
        "name": run.run_id,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": f"s3://{settings.artifacts_bucket}/{settings.entry_point_key}",
                "entryPointArguments": entry_point_arguments(run, settings),
                "sparkSubmitParameters": spark_submit_parameters(
                    settings.artifacts_bucket,
                    environment_archive_key(run, settings),
                    settings.sizing,
                    run_sizing,
                    settings.region,
                ),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": settings.log_uri}}
        },
        "executionTimeoutMinutes": run_sizing.timeout_minutes,
        "tags": {
            "service": "image-featurizer",
            "dataset": run.dataset,
            "run-id": run.run_id,
            "trigger": run.trigger,
        },
    }


def launch_run(run: RunSpec, *, settings: JobSettings, emr: Any, table: Any) -> dict[str, str]:
    """Record the run, start its job run, record the job run. The caller wraps this in Powertools
    idempotency (key: run_id); a retry after a failure in between sends the same clientToken."""
    records.put_run(table, run, application_id=settings.application_id)
    try:
        response = emr.start_job_run(**start_job_run_request(run, settings))
    except ClientError as error:
        code = error.response["Error"].get("Code", "unknown")
        reason = ARN.sub("<ARN>", error.response["Error"].get("Message", ""))  # shown to callers
        message = f"EMR Serverless refused to start run {run.run_id}: {code}: {reason}"
        try:
            records.record_start_error(table, run.run_id, message)
        except Exception:  # the refusal is the error to report; the record still says STARTING
            logger.exception("could not record why the run did not start", extra={"run_id": run.run_id})
        raise RunStartError(message, code) from error
    job_run_id = response["jobRunId"]
    records.record_job_run(table, run.run_id, run.dataset, job_run_id, run.requested_by)
    return {
        "run_id": run.run_id,
        "dataset": run.dataset,
        "job_run_id": job_run_id,
        "application_id": settings.application_id,
        "output": f"{run.output_uri}{run.run_id}/",
        "logs": settings.job_log_uri(job_run_id),
    }
