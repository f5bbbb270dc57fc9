"""The local stack's guards: its state folder, its servers' answers to a failure, and template overrides."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local import api, emr
from local.jobs import Runtime
from local.stack import StateDirError, check_state_dir
from local.template import StackTemplate, function_environment, resource_names


@pytest.mark.parametrize("contents", [None, {}, {"stack.json": "{}", "logs/a.log": "x"}])
def test_a_new_empty_or_earlier_stack_folder_is_accepted(
    tmp_path: Path, contents: dict[str, str] | None
) -> None:
    state = tmp_path / "state"
    for name, text in (contents or {}).items():
        (state / name).parent.mkdir(parents=True, exist_ok=True)
        (state / name).write_text(text)
    if contents == {}:
        state.mkdir()

    check_state_dir(state)


def test_a_folder_that_is_not_the_stacks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("years of work")

    with pytest.raises(StateDirError, match=r"holds no stack\.json"):
        check_state_dir(tmp_path)
    assert (tmp_path / "thesis.tex").exists()


def test_an_override_replaces_a_variable_a_function_has_and_adds_none() -> None:
    resources = resource_names("arn:aws:sns:us-east-1:123456789012:topic", "http://127.0.0.1:4566")
    template = StackTemplate(resources, {"QUIET_SECONDS": "7", "NOT_IN_TEMPLATE": "x"})

    for spec in template.functions():
        own = function_environment(template.template, spec.name, resources)
        expected = own | ({"QUIET_SECONDS": "7"} if "QUIET_SECONDS" in own else {})
        assert spec.environment == expected, spec.name


def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def error_of(url: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(url, timeout=10)
    error = raised.value
    return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def emr_url(tmp_path: Path) -> Iterator[str]:
    runtime = Runtime(None, "", {}, [], Path(), tmp_path, cores=1, driver_memory="1g")
    record = emr.application_record("00f1localstack01", "featurizer-local", "emr-7.10.0", {})
    app = emr.Application(record, runtime, lambda run, previous: None, created_by="arn:aws:sts::1:x")

    def broken(query: dict[str, list[str]]) -> dict[str, Any]:
        raise KeyError("jobRuns")

    app.list_job_runs = broken  # type: ignore[method-assign]
    yield from serving(emr.make_server(app, "127.0.0.1", 0))


def test_the_local_emr_answers_an_unexpected_error_with_a_500(emr_url: str) -> None:
    status, headers, body = error_of(f"{emr_url}/applications/00f1localstack01/jobruns")

    assert (status, headers["x-amzn-ErrorType"]) == (500, "InternalServerException")
    assert body == {"message": "KeyError: 'jobRuns'"}


class BrokenFunction:
    name = "ApiFunction"

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": "two hundred"}  # not an int: the API cannot answer it


@pytest.fixture
def api_url() -> Iterator[str]:
    yield from serving(api.make_server(BrokenFunction(), ["GET /runs/{run_id}"], "127.0.0.1", 0))  # type: ignore[arg-type]


def test_the_http_api_answers_an_unexpected_error_with_a_500(api_url: str) -> None:
    status, _, body = error_of(f"{api_url}/runs/r1")

    assert status == 500
    assert body["message"].startswith("Internal Server Error: ValueError: invalid literal for int()")
