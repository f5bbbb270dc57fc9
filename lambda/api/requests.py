"""Validation of API requests into models, with errors that name the field and the problem.

Pydantic parses and validates the body; its error types are worded here, as pydantic's documentation
shows (a message per error type), so that each 4xx says what to send instead.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode, urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from common.errors import InvalidRequestError
from common.records import PAGE_KEYS
from common.runs import (
    DATASET_PATTERN,
    INBOX_PREFIX,
    RUN_ID_PATTERN,
    RunOptions,
    is_valid_dataset,
    is_valid_run_id,
    split_s3_uri,
)

EXAMPLE_BODY = '{"input": "s3://<bucket>/inbox/<dataset>/"}'
SHOWN_CHARACTERS = 80
MAX_BODY_BYTES = 16 * 1024  # a request is an input URI and a few options
MAX_INPUT_CHARACTERS = 1100  # "s3://", a bucket name (63) and a key (S3: at most 1024 bytes)
# Path segments of an input that S3 keeps but URLs, the job's listing or shells read otherwise.
UNSAFE_SEGMENT = re.compile(r"\.{1,2}|.*[\x00-\x1f\x7f#?\\].*", re.DOTALL)
MESSAGES = {
    "missing": "is required",
    "json_invalid": "is not valid JSON: {error}",
    "int_type": "must be an integer, got {input}",
    "float_type": "must be a number, got {input}",
    "string_type": "must be a string, got {input}",
    "model_type": "must be a JSON object, got {input}",
    "literal_error": "must be one of {expected}, got {input}",
    "bool_type": "must be true or false, got {input}",
    "value_error": "{error}",
}


class RunRequest(BaseModel):
    """Body of ``POST /runs``: ``{"input": "s3://<data-bucket>/inbox/<dataset>/...", "options": {...}}``,
    and ``"dry_run": true`` for the run's plan instead of the run (no job option: the job never sees it),
    or ``"from_run": "<run id>"`` to refit from that run's features (docs/feature-store.md), or
    ``"predict_with": "<run id>"`` to classify the input's images with the pipeline that run trained."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    input: str = Field(max_length=MAX_INPUT_CHARACTERS)
    options: RunOptions = RunOptions()
    dry_run: bool = False
    from_run: str | None = Field(default=None, max_length=128)  # refit: a completed run of the dataset
    predict_with: str | None = Field(default=None, max_length=128)  # predict: a completed trained run


class RequestValidationError(InvalidRequestError):
    """Every problem found in a request body; ``field``/``problem`` are the first one."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        field, problem = problems[0]
        super().__init__(field, problem)


def _field(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def _problem(error: ErrorDetails) -> str:
    """Our wording where there is one, else pydantic's own message (bounds name their limit)."""
    if error["type"] == "extra_forbidden":
        if error["loc"][0] == "options":
            return f"unknown option; the options are: {', '.join(RunOptions.model_fields)}"
        return f"unknown field; the fields are: {', '.join(RunRequest.model_fields)}"
    given = _shown(error["input"])
    template = MESSAGES.get(error["type"])
    if template is None:
        return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {given}"
    return template.format(input=given, **{k: str(v) for k, v in (error.get("ctx") or {}).items()})


def _shown(value: object) -> str:
    """A value as JSON, cut short: an error names what was sent, it does not send it back."""
    text = json.dumps(value, default=str)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[: SHOWN_CHARACTERS - 3]}..."


def request_text(body: str | None, is_base64_encoded: bool) -> str | None:
    """The body as text: API Gateway base64-encodes bodies it does not take for text."""
    if body is None:
        return None
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise InvalidRequestError(
            "body", f"is larger than {MAX_BODY_BYTES} bytes; send JSON {EXAMPLE_BODY}", 413
        )
    try:
        raw = b64decode(body, validate=True) if is_base64_encoded else body.encode("utf-8", "surrogatepass")
    except ValueError:  # binascii.Error, or characters outside base64's alphabet
        raise InvalidRequestError("body", "is marked base64-encoded but is not valid base64") from None
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequestError(
            "body", f"is larger than {MAX_BODY_BYTES} bytes; send JSON {EXAMPLE_BODY}", 413
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            "body", f"is not UTF-8 text (byte {error.start}); send JSON in UTF-8"
        ) from None


def parse_run_request(body: str | None) -> RunRequest:
    if body is None or not body.strip():
        raise InvalidRequestError("body", f"is empty; send JSON {EXAMPLE_BODY}")
    try:
        return RunRequest.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError([(_field(e), _problem(e)) for e in error.errors()]) from None


def normalise_input(uri: str, data_bucket: str) -> tuple[str, str, str]:
    """``(input_uri, key_prefix, dataset)`` for an input inside ``s3://<data_bucket>/inbox/<dataset>/``."""
    try:
        bucket, key = split_s3_uri(uri.strip())
    except ValueError:
        raise InvalidRequestError("input", f"must be an s3:// URI, got {_shown(uri)}") from None
    if bucket != data_bucket:
        raise InvalidRequestError(
            "input", f"must be in the service's data bucket s3://{data_bucket}/, got bucket {bucket!r}"
        )
    empty = InvalidRequestError("input", f"prefix is empty; use s3://{data_bucket}/{INBOX_PREFIX}<dataset>/")
    if not key.strip("/"):
        raise empty
    if not key.startswith(INBOX_PREFIX):
        raise InvalidRequestError(
            "input", f"must be under s3://{data_bucket}/{INBOX_PREFIX}, got {_shown(uri)}"
        )
    prefix = key if key.endswith("/") else f"{key}/"
    dataset = prefix[len(INBOX_PREFIX) :].split("/", 1)[0]
    if not dataset:
        raise empty
    if not is_valid_dataset(dataset):
        raise InvalidRequestError(
            "input", f"dataset folder {_shown(dataset)} must match {DATASET_PATTERN.pattern}"
        )
    for segment in prefix[len(INBOX_PREFIX) :].split("/")[:-1]:
        if not segment or UNSAFE_SEGMENT.fullmatch(segment):
            raise InvalidRequestError(
                "input",
                f"folder {_shown(segment)} is not a safe path segment: no empty, '.' or '..' folders, "
                "and no control characters, '#', '?' or backslashes",
            )
    return f"s3://{data_bucket}/{prefix}", prefix, dataset


def check_run_id(run_id: str, field: str = "run_id") -> str:
    if not is_valid_run_id(run_id):
        raise InvalidRequestError(field, f"must match {RUN_ID_PATTERN.pattern}")
    return run_id


LIST_LIMIT_BOUNDS = (1, 100)
LIST_LIMIT_DEFAULT = 20
STARTED_BY = ("me", "drop")  # GET /runs?started_by=: the caller's runs, or (operators) the drops'


@dataclass(frozen=True)
class ListQuery:
    """``GET /runs?limit=&started_by=&next=``: a page of runs, newest first."""

    limit: int = LIST_LIMIT_DEFAULT
    drops: bool = False
    after: dict[str, str] | None = None  # the key the previous page ended at, from its ``next`` token


def parse_list_query(params: Mapping[str, str] | None) -> ListQuery:
    params = params or {}
    unknown = sorted(set(params) - {"limit", "started_by", "next"})
    if unknown:
        raise InvalidRequestError(
            unknown[0], "unknown query parameter; the parameters are: limit, started_by, next"
        )
    low, high = LIST_LIMIT_BOUNDS
    limit = params.get("limit", str(LIST_LIMIT_DEFAULT))
    digits = limit.isascii() and limit.isdecimal() and len(limit) <= len(str(high))
    if not digits or not low <= int(limit) <= high:
        raise InvalidRequestError(
            "limit", f"must be a whole number from {low} to {high}, got {_shown(limit)}"
        )
    started_by = params.get("started_by", STARTED_BY[0])
    if started_by not in STARTED_BY:
        raise InvalidRequestError(
            "started_by", f"must be one of {', '.join(STARTED_BY)}, got {_shown(started_by)}"
        )
    return ListQuery(
        int(limit), started_by == "drop", _page_key(params["next"]) if "next" in params else None
    )


def page_token(key: Mapping[str, Any]) -> str:
    """The ``next`` token of a page that ended at ``key`` (the index's keys: strings)."""
    return urlsafe_b64encode(json.dumps(dict(key), sort_keys=True).encode()).decode()


def _page_key(token: str) -> dict[str, str]:
    """The key a ``next`` token holds, checked as far as DynamoDB would refuse it: a token this API did
    not give is the caller's mistake, never a 5xx."""
    refused = InvalidRequestError("next", "is not a token this API gave: send the next of the page before")
    try:
        key = json.loads(urlsafe_b64decode(token.encode()))
    except (ValueError, RecursionError):  # binascii.Error, JSON, UnicodeDecodeError; deep nesting
        raise refused from None
    if not isinstance(key, dict) or set(key) != set(PAGE_KEYS):
        raise refused
    if not all(isinstance(v, str) and v for v in key.values()):
        raise refused
    if not key["pk"].startswith("run#") or not is_valid_run_id(key["pk"].removeprefix("run#")):
        raise refused
    try:
        datetime.fromisoformat(key["created_at"])
    except ValueError:
        raise refused from None
    return key
