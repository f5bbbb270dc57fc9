"""Reading a run's outputs (flags, manifest, metrics, timings) and listing inputs in the data bucket.

A refusal is never taken for "not there": S3 answers 403 instead of 404 to a role without s3:ListBucket,
so a missing permission would look like a run that never finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from common.errors import PermissionMissingError, UnreadableOutputError
from common.plan import InputSize

logger = Logger(child=True)

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
DENIED_CODES = frozenset({"AccessDenied", "403"})


@contextmanager
def permission(action: str, bucket: str, key: str) -> Iterator[None]:
    """Turn S3's refusal into PermissionMissingError naming `action` and the object."""
    try:
        yield
    except ClientError as error:
        if error.response["Error"]["Code"] not in DENIED_CODES:
            raise
        raise PermissionMissingError(action, f"s3://{bucket}/{key}") from error


def read_run_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's JSON object, or None when it does not exist (yet); UnreadableOutputError when it is
    there but no JSON object (the job writes only objects: something else wrote it)."""
    with permission("s3:GetObject", bucket, key):
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in MISSING_CODES:
                return None
            raise
    try:
        loaded = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise UnreadableOutputError(f"s3://{bucket}/{key}", "is not valid JSON") from None
    if not isinstance(loaded, dict):
        raise UnreadableOutputError(
            f"s3://{bucket}/{key}", f"holds a JSON {type(loaded).__name__}, not an object"
        )
    return loaded


def read_optional_run_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """A run output the caller can do without (metrics, timings, manifest): unreadable is left out, and
    logged."""
    try:
        return read_run_json(s3, bucket, key)
    except UnreadableOutputError:
        logger.warning("unreadable run output left out", extra={"key": key})
        return None


def has_object(s3: Any, bucket: str, key: str) -> bool:
    """Whether the object exists (HEAD: a 404 only to a caller that may list the bucket)."""
    with permission("s3:GetObject", bucket, key):
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in MISSING_CODES:
                return False
            raise
    return True


def count_objects(s3: Any, bucket: str, prefix: str, *, budget_seconds: float) -> InputSize:
    """The objects under the prefix and their bytes, listed a page (1,000 keys) at a time until the budget
    is spent, and then at least that many: 10^8 objects take 10^5 requests, longer than a caller waits."""
    deadline = time.monotonic() + budget_seconds
    objects = size = 0
    with permission("s3:ListBucket", bucket, prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects += page.get("KeyCount", 0)
            size += sum(item["Size"] for item in page.get("Contents", []))
            if page.get("IsTruncated") and time.monotonic() >= deadline:
                return InputSize(objects, size, complete=False)
    return InputSize(objects, size)
