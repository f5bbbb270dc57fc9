"""`featurizer remote` against an HTTP server on 127.0.0.1 that answers as the API does: SigV4-signed
requests, `wait` to the end with its exit codes, and the API's refusals told as they are."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from featurizer.remote import main as remote


class FakeApi(ThreadingHTTPServer):
    """Answers each request with the next of `answers` (status, body), and keeps what it was sent."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers = answers
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeApi

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.received.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        status, answer = self.server.answers.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[FakeApi]:
    server = FakeApi(list(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def status(state: str, **more: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"run_id": "r1", "state": state, "emr": {"state": more.pop("emr", state)}, **more}


DONE = {"images_featurized": 60, "accuracy": 0.98}
PROGRESS = {"stage": "featurize", "images_done": 1200, "images_total": 10000}
SUCCESS = [
    (202, {"run_id": "r1", "jobRunId": "j1"}),
    status("PENDING"),
    (503, {"message": "Service Unavailable"}),
    status("RUNNING"),
    status("RUNNING", progress=PROGRESS),
    status("RUNNING", progress={"stage": "fit", "images_done": None, "images_total": None}),
    status("COMPLETED", emr="RUNNING", summary=DONE),
    status(
        "COMPLETED", emr="SUCCESS", summary=DONE, cost={"usd": 0.0042, "estimate": True, "planned_usd": 0.05}
    ),
]
FAILURE = [
    status("RUNNING"),
    status("FAILED", failure={"stage": "featurize", "message": "model unreadable"}, cost={"usd": 0.0123}),
]


@pytest.mark.parametrize("api", [SUCCESS], indirect=True)
def test_start_and_wait_signs_each_request_and_exits_0_with_the_summary(
    api: FakeApi, credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    argv = ["--api", api.url, "--region", "eu-west-1", "start", "--input", "s3://b/inbox/fruits/"]

    code = remote([*argv, "--options", '{"pca_k": 20}', "--wait", "--interval", "0"], out=out)

    assert code == 0, capsys.readouterr().err
    posted = api.received[0]
    assert (posted["method"], posted["path"]) == ("POST", "/runs")
    assert posted["body"] == {"input": "s3://b/inbox/fruits/", "options": {"pca_k": 20}, "dry_run": False}
    for request in api.received:
        signature = request["headers"]["Authorization"]
        assert signature.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/execute-api/aws4_request" in signature
        assert "X-Amz-Date" in request["headers"]
    lines = out.getvalue().splitlines()
    assert [line for line in lines if line.startswith("r1: ")] == [
        "r1: PENDING",
        "r1: RUNNING",
        "r1: RUNNING - stage featurize 1,200/10,000 images",
        "r1: RUNNING - stage fit",
        "r1: COMPLETED (EMR RUNNING) - images_featurized 60, accuracy 0.98",
        "r1: COMPLETED (EMR SUCCESS) - images_featurized 60, accuracy 0.98"
        " - cost $0.0042 (an estimate; planned at most $0.0500)",
    ]
    assert not api.answers


@pytest.mark.parametrize("api", [FAILURE], indirect=True)
def test_wait_on_a_run_that_fails_exits_1_saying_where_and_why(api: FakeApi, credentials: None) -> None:
    out = io.StringIO()

    code = remote(["--api", api.url, "--region", "eu-west-1", "wait", "r1", "--interval", "0"], out=out)

    assert code == 1
    assert (
        out.getvalue().splitlines()[-1]
        == "r1: FAILED - cost $0.0123 - failed in stage featurize: model unreadable"
    )
    assert api.received[0]["path"] == "/runs/r1"


@pytest.mark.parametrize(
    "api", [[(400, {"field": "options.pca_k", "problem": "must be from 1 to 1280, got 0"})]], indirect=True
)
def test_a_refused_request_exits_2_with_the_api_s_problem(
    api: FakeApi, credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--api", api.url, "start", "--input", "s3://b/inbox/x/", "--options", '{"pca_k": 0}']

    assert remote(argv, out=io.StringIO()) == 2
    assert "answered 400 (options.pca_k): must be from 1 to 1280, got 0" in capsys.readouterr().err


def test_no_api_an_unreachable_one_or_bad_options_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert remote(["--api", "", "status", "r1"]) == 2
    assert "--api is required" in capsys.readouterr().err
    assert remote(["--api", "http://127.0.0.1:9", "status", "r1"]) == 2
    assert "cannot reach the API at http://127.0.0.1:9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        remote(["--api", "http://127.0.0.1:9", "start", "--input", "s3://b/x/", "--options", "[1]"])
    assert "must be a JSON object of options" in capsys.readouterr().err


def test_without_credentials_an_aws_api_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    url = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    assert remote(["--api", url, "status", "r1"]) == 2
    assert "no AWS credentials found to sign the request" in capsys.readouterr().err


@pytest.mark.parametrize("api", [[status("RUNNING")] * 3], indirect=True)
def test_wait_past_its_timeout_exits_3_the_run_still_going(
    api: FakeApi, credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--api", api.url, "--region", "eu-west-1", "wait", "r1", "--interval", "0", "--timeout", "0"]

    assert remote(argv, out=io.StringIO()) == 3
    assert "run r1 is still RUNNING after 0 s: wait again" in capsys.readouterr().err


def listed(run_id: str, **more: str) -> dict[str, str]:
    return {
        "run_id": run_id,
        "created_at": "2026-12-03T10:00:00+00:00",
        "state": "SUCCESS",
        "trigger": "api",
        **more,
    }


PAGES = [
    (200, {"runs": [listed("r3", predict_with="r1"), listed("r2", from_run="r1")], "next": "tok+/="}),
    (200, {"runs": [listed("r1")], "next": None}),
]


@pytest.mark.parametrize("api", [PAGES], indirect=True)
def test_list_prints_a_line_a_run_and_follows_the_pages_with_all(api: FakeApi, credentials: None) -> None:
    out = io.StringIO()

    assert remote(["--api", api.url, "list", "--limit", "2", "--drops", "--all"], out=out) == 0

    assert [request["path"] for request in api.received] == [
        "/runs?limit=2&started_by=drop",
        "/runs?limit=2&started_by=drop&next=tok%2B%2F%3D",
    ]
    assert [line.split("  ") for line in out.getvalue().splitlines()] == [
        ["r3", "2026-12-03T10:00:00+00:00", "SUCCESS", "api predict_with r1"],
        ["r2", "2026-12-03T10:00:00+00:00", "SUCCESS", "api from_run r1"],
        ["r1", "2026-12-03T10:00:00+00:00", "SUCCESS", "api"],
    ]


@pytest.mark.parametrize("api", [PAGES[:1]], indirect=True)
def test_list_without_all_prints_one_page_and_how_to_get_the_next(api: FakeApi, credentials: None) -> None:
    out = io.StringIO()

    assert remote(["--api", api.url, "list", "--drops"], out=out) == 0

    more = "(more: list --limit 20 --drops --next tok+/=, or list --limit 20 --drops --all)"
    assert out.getvalue().splitlines()[-1] == more
