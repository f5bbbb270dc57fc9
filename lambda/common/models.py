"""Parser models for events the Powertools parser has no model for."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

# The states in which an EMR Serverless job run has ended (the template's JobRunEnded rules match them).
TERMINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})


class EmrJobRunStateChangeDetail(BaseModel):
    """``detail`` of an "EMR Serverless Job Run State Change" event (source aws.emr-serverless)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    job_run_id: str = Field(alias="jobRunId")
    application_id: str = Field(alias="applicationId")
    state: str
    previous_state: str | None = Field(default=None, alias="previousState")
    state_details: str | None = Field(default=None, alias="stateDetails")
    arn: str | None = None
    release_label: str | None = Field(default=None, alias="releaseLabel")
    job_run_name: str | None = Field(default=None, alias="jobRunName")


class EmrJobRunStateChangeEvent(EventBridgeModel):  # type: ignore[override]
    detail: EmrJobRunStateChangeDetail
