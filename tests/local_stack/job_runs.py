"""A local EMR job run as StartJobRun would make it, for the tests of the local stack."""

from __future__ import annotations

import dataclasses
from typing import Any

from local.jobs import JobRun
from local.template import ACCOUNT, APPLICATION_ID, ARTIFACTS_BUCKET, DATA_BUCKET, JOB_ROLE_ARN, REGION


def a_job_run(**changes: Any) -> JobRun:
    """A SUBMITTED job run of the featurizer on the local application; `changes` set other fields."""
    run = JobRun(
        application_id=APPLICATION_ID,
        arn=f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{APPLICATION_ID}/jobruns/00fjob",
        job_run_id="00fjob",
        name="fruits-20261124T100000-0a1b2c3d",
        client_token="token",
        execution_role=JOB_ROLE_ARN,
        release_label="emr-7.10.0",
        job_driver={"sparkSubmit": {"entryPoint": f"s3://{ARTIFACTS_BUCKET}/job/main.py"}},
        configuration_overrides={
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": f"s3://{DATA_BUCKET}/logs/"}}
        },
        tags={},
        execution_timeout_minutes=5,
        created_by=f"arn:aws:sts::{ACCOUNT}:assumed-role/local-stack/featurizer",
    )
    return dataclasses.replace(run, **changes)
