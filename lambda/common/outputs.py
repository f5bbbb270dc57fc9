"""Reading a run's JSON outputs (flags, manifest, metrics, timings) from the data bucket."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

logger = Logger(child=True)


def read_run_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's JSON, or None when it does not exist (yet) or is not readable JSON."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    try:
        loaded: dict[str, Any] = json.loads(body)
    except json.JSONDecodeError:
        logger.warning("unreadable JSON in run output", extra={"key": key})
        return None
    return loaded
