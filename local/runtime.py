"""One Lambda function's process, like a warm execution environment: ``python -m local.runtime HANDLER``.

The handler (``module/path.function`` under lambda/, as template.yaml names it) is imported once with the
environment the stack passes (template.yaml's variables, endpoints of the local services); then each line
on stdin is one invocation ``{"event": ..., "request_id": ..., "timeout_ms": ...}`` and gets one line back,
``{"ok": true, "result": ...}`` or ``{"ok": false, "errorType": ..., "errorMessage": ...}``. The first
line back reports the import (init). The handler's own output (Powertools' JSON logs) goes to stderr,
which the stack writes to the function's log file, as CloudWatch Logs would keep it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from local.template import ACCOUNT

LAMBDA_DIR = Path(__file__).resolve().parents[1] / "lambda"


@dataclass
class LambdaContext:
    """The context object the Lambda Python runtime passes (the attributes handlers and Powertools read)."""

    function_name: str
    aws_request_id: str
    deadline: float
    memory_limit_in_mb: int
    invoked_function_arn: str
    function_version: str = "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return time.strftime("%Y/%m/%d/[$LATEST]local")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def _reply(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, default=str) + "\n")
    channel.flush()


def _error(error: BaseException) -> dict[str, Any]:
    return {"ok": False, "errorType": type(error).__name__, "errorMessage": str(error)}


def serve(handler: str) -> int:
    channel = os.fdopen(os.dup(1), "w")  # replies go to the original stdout ...
    os.dup2(2, 1)  # ... everything the handler prints goes to stderr (the function's log)
    sys.path.insert(0, str(LAMBDA_DIR))
    module_name, function_name = handler.rsplit(".", 1)
    try:
        function = getattr(importlib.import_module(module_name.replace("/", ".")), function_name)
    except Exception as error:
        traceback.print_exc()
        _reply(channel, _error(error))
        return 1
    _reply(channel, {"ok": True, "result": "initialized"})
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    arn = f"arn:aws:lambda:{os.environ['AWS_REGION']}:{ACCOUNT}:function:{name}"
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"))
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            name, request["request_id"], time.time() + request["timeout_ms"] / 1000, memory, arn
        )
        try:
            result = function(request["event"], context)
        except Exception as error:
            traceback.print_exc()
            _reply(channel, _error(error))
            continue
        _reply(channel, {"ok": True, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
