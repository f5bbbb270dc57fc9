"""Validation of API request bodies into models, with errors that name the field and the problem."""

from __future__ import annotations

import json
from typing import Any

from common.errors import InvalidRequestError
from common.runs import INBOX_PREFIX, RUN_ID_PATTERN, JobOptions, is_valid_dataset, split_s3_uri
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

OPTION_NAMES = ", ".join(JobOptions.model_fields)


class RunRequest(BaseModel):
    """Body of ``POST /runs``: ``{"input": "s3://<data-bucket>/inbox/<dataset>/...", "options": {...}}``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    input: str
    options: JobOptions = JobOptions()


class RequestValidationError(InvalidRequestError):
    """Every problem found in a request body; ``field``/``problem`` are the first one."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        field, problem = problems[0]
        super().__init__(field, problem)


def _field(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        loc = error["loc"]
        if len(loc) >= 2 and loc[0] == "options":
            return f"unknown option; the options are: {OPTION_NAMES}"
        return "unknown field; the fields are: input, options"
    if kind == "missing":
        return "is required"
    if kind in ("int_type", "int_parsing"):
        return f"must be an integer, got {json.dumps(error['input'])}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {json.dumps(error['input'])}"
    if kind == "string_type":
        return f"must be a string, got {json.dumps(error['input'])}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a JSON object, got {json.dumps(error['input'])}"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"must be one of {expected}, got {json.dumps(error['input'])}"
    if kind == "value_error":
        return str((error.get("ctx") or {}).get("error", error["msg"]))
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {json.dumps(error['input'])}"


def parse_run_request(body: str | None) -> RunRequest:
    if body is None or not body.strip():
        raise InvalidRequestError("body", 'is empty; send JSON {"input": "s3://<bucket>/inbox/<dataset>/"}')
    try:
        payload: Any = json.loads(body)
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            "body", f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequestError("body", f"must be a JSON object, got {type(payload).__name__}")
    try:
        return RunRequest.model_validate(payload)
    except ValidationError as error:
        raise RequestValidationError([(_field(e), _problem(e)) for e in error.errors()]) from None


def normalise_input(uri: str, data_bucket: str) -> tuple[str, str, str]:
    """``(input_uri, key_prefix, dataset)`` for an input inside ``s3://<data_bucket>/inbox/<dataset>/``."""
    try:
        bucket, key = split_s3_uri(uri.strip())
    except ValueError:
        raise InvalidRequestError("input", f"must be an s3:// URI, got {uri!r}") from None
    if bucket != data_bucket:
        raise InvalidRequestError(
            "input", f"must be in the service's data bucket s3://{data_bucket}/, got bucket {bucket!r}"
        )
    if not key.strip("/"):
        raise InvalidRequestError(
            "input", f"prefix is empty; use s3://{data_bucket}/{INBOX_PREFIX}<dataset>/"
        )
    if not key.startswith(INBOX_PREFIX):
        raise InvalidRequestError("input", f"must be under s3://{data_bucket}/{INBOX_PREFIX}, got {uri!r}")
    prefix = key if key.endswith("/") else f"{key}/"
    dataset = prefix[len(INBOX_PREFIX) :].split("/", 1)[0]
    if not dataset:
        raise InvalidRequestError(
            "input", f"prefix is empty; use s3://{data_bucket}/{INBOX_PREFIX}<dataset>/"
        )
    if not is_valid_dataset(dataset):
        raise InvalidRequestError(
            "input", f"dataset folder {dataset!r} must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}"
        )
    return f"s3://{data_bucket}/{prefix}", prefix, dataset


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id):
        raise InvalidRequestError("run_id", "must match [A-Za-z0-9._-]{1,128}")
    return run_id
