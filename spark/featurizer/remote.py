"""`featurizer remote`: start, follow, cancel and list runs of the deployed service through its HTTP API.

Requests to AWS are signed with SigV4 from the caller's own AWS credentials (botocore's signer, the one
the AWS CLI uses), as the API's IAM authorization requires; the local stack's API takes the same
requests (it checks no signature, docs/local-stack.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlparse

API_ENV = "FEATURIZER_API"
SERVICE = "execute-api"
# GET /runs/<id>'s states a run does not leave (lambda/common/runs.py's ENDED_STATES; a test compares).
SUCCEEDED = ("COMPLETED",)
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "START_FAILED")
EMR_ENDED = ("SUCCESS", "FAILED", "CANCELLED")  # the job run's, after which EMR bills it (GET's cost)
COST_WAIT_SECONDS = 120  # a run ends with its flag; its job run a little later, and then it is billed
TIMEOUT_SECONDS = 30  # one request's
RETRIES = 5  # polls in a row that may fail (the API throttled, unreachable or failing) before wait gives up
LOCAL_REGION = "us-east-1"  # what a request to the local stack is signed for: it checks no signature


class RemoteError(RuntimeError):
    """The API could not be reached or refused the request; the message says what to do. `transient`:
    asking again later may succeed (429, 5xx, no answer)."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class StillRunning(RemoteError):
    """`wait --timeout` passed before the run ended."""


@dataclass(frozen=True)
class Api:
    """The deployed API (its base URL, the stack's ApiUrl output) and how to sign for it."""

    url: str
    region: str | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The response's JSON; RemoteError with the API's own problem for a 4xx or 5xx."""
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.url.rstrip('/')}{path}"
        headers = {"Content-Type": "application/json"} if data is not None else {}
        request = urllib.request.Request(url, data, self._signed(method, url, data, headers), method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as error:
            raise RemoteError(_refusal(error), transient=error.code == 429 or error.code >= 500) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise RemoteError(
                f"cannot reach the API at {self.url} ({getattr(error, 'reason', error)}): check --api "
                f"(or ${API_ENV}), the stack's ApiUrl output",
                transient=True,
            ) from None

    def _signed(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        """The headers with SigV4's, from the caller's AWS credentials; a local API's go unsigned when
        there are none (it checks no signature)."""
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            if _is_local(url):
                return headers
            raise RemoteError(
                "no AWS credentials found to sign the request: configure them as for the AWS CLI "
                "(aws configure, AWS_PROFILE or the AWS_ACCESS_KEY_ID variables)"
            )
        region = (
            self.region
            or _region_of(url)
            or session.region_name
            or (LOCAL_REGION if _is_local(url) else None)
        )
        if region is None:
            raise RemoteError("the API's region is unknown: pass --region (or set AWS_REGION)")
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(request)
        return dict(request.headers.items())


def _is_local(url: str) -> bool:
    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


def _region_of(url: str) -> str | None:
    """`https://<id>.execute-api.<region>.amazonaws.com` -> region."""
    parts = (urlparse(url).hostname or "").split(".")
    return parts[2] if len(parts) >= 5 and parts[1] == SERVICE else None


def _refusal(error: urllib.error.HTTPError) -> str:
    """The API's error body as one line: what was wrong and, where it names one, the field."""
    try:
        body = json.loads(error.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = {}
    problem = body.get("problem") or body.get("message") or error.reason
    field = f" ({body['field']})" if body.get("field") else ""
    return f"the API answered {error.code}{field}: {problem}"


def describe(status: dict[str, Any]) -> str:
    """A run's state as one line: the state, EMR's, its stage and images done while it goes (as far as the
    job has published them), and when it ended, its summary."""
    emr = status.get("emr", {}).get("state")
    line = f"{status['run_id']}: {status['state']}" + (
        f" (EMR {emr})" if emr and emr != status["state"] else ""
    )
    if progress := status.get("progress"):
        line += f" - stage {progress.get('stage')}"
        if progress.get("images_total") is not None:
            line += f" {progress.get('images_done') or 0:,}/{progress['images_total']:,} images"
    summary = status.get("summary")
    if summary:
        line += " - " + ", ".join(f"{name} {_shown(value)}" for name, value in summary.items())
    if cost := status.get("cost"):
        notes = ["an estimate"] if cost.get("estimate") else []
        notes += [f"planned at most ${cost['planned_usd']:.4f}"] if "planned_usd" in cost else []
        line += f" - cost ${cost['usd']:.4f}" + (f" ({'; '.join(notes)})" if notes else "")
    if failure := status.get("failure"):
        stage = f" in stage {failure['stage']}" if failure.get("stage") else ""
        line += f" - failed{stage}: {failure.get('message')}"
    return line


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {v}" for k, v in value.items()) + "}"
    return str(value)


def wait(
    api: Api,
    run_id: str,
    out: TextIO,
    interval: float = 10.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Follow the run until it ends (and, for up to COST_WAIT_SECONDS more, until EMR has billed its job
    run), printing each new state; returns its last status. A poll that fails for a while is retried."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown, ended_at, failures = None, None, 0
    while True:
        try:
            status = api.call("GET", f"/runs/{quote(run_id, safe='')}")
            failures = 0
        except RemoteError as error:
            failures += 1
            if not error.transient or failures >= RETRIES:
                raise
            sleep(interval)
            continue
        line = describe(status)
        if line != shown:
            print(line, file=out, flush=True)
            shown = line
        if status["state"] in ENDED:
            ended_at = ended_at or time.monotonic()
            billed = "cost" in status or status.get("emr", {}).get("state") in EMR_ENDED
            if billed or time.monotonic() - ended_at >= COST_WAIT_SECONDS or "emr" not in status:
                return status
        elif deadline is not None and time.monotonic() >= deadline:
            raise StillRunning(f"run {run_id} is still {status['state']} after {timeout:.0f} s: wait again")
        sleep(interval)


def list_runs(api: Api, out: TextIO, limit: int, drops: bool, after: str | None, every: bool) -> None:
    """Print the caller's runs (or the drops'), newest first, a line each: a page, or with ``every`` all
    of them; a page with more after it ends with the option that lists them."""
    while True:
        query = {
            "limit": str(limit),
            **({"started_by": "drop"} if drops else {}),
            **({"next": after} if after else {}),
        }
        page = api.call("GET", f"/runs?{urlencode(query)}")
        for run in page["runs"]:
            source = next((f" {k} {run[k]}" for k in ("predict_with", "from_run") if run.get(k)), "")
            print(f"{run['run_id']}  {run['created_at']}  {run['state']}  {run['trigger']}{source}", file=out)
        after = page.get("next")
        if not after:
            return
        if not every:
            same = f" --limit {limit}" + (" --drops" if drops else "")
            print(f"(more: list{same} --next {after}, or list{same} --all)", file=out)
            return


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"is not JSON ({error}): write it as '{{\"pca_k\": 20}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of options, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featurizer remote", description=__doc__.splitlines()[0])
    parser.add_argument("--api", default=os.environ.get(API_ENV), help=f"the API's URL (default ${API_ENV})")
    parser.add_argument("--region", default=None, help="the API's region (default: from its URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="POST /runs: start a run of an input folder")
    start.add_argument("--input", required=True, help="s3://<data bucket>/inbox/<dataset>/...")
    start.add_argument(
        "--options", type=_json_object, default=None, help="job options as JSON: '{\"pca_k\": 20}'"
    )
    source = start.add_mutually_exclusive_group()
    source.add_argument("--from-run", default=None, help="refit from this completed run's features")
    source.add_argument("--predict-with", default=None, help="classify with this completed run's pipeline")
    start.add_argument("--dry-run", action="store_true", help="the run's plan, nothing started")
    start.add_argument("--wait", action="store_true", help="then follow it to its end, as `wait` does")
    for name, text in (
        ("status", "GET /runs/<id>"),
        ("wait", "follow a run to its end"),
        ("cancel", "cancel"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("run_id")
    listing = commands.add_parser("list", help="GET /runs: your runs, newest first")
    listing.add_argument("--limit", type=int, default=20, help="runs a page (20; at most 100)")
    listing.add_argument("--drops", action="store_true", help="the runs drops started (the operator role)")
    listing.add_argument("--next", default=None, help="the page after the one that printed this token")
    listing.add_argument("--all", action="store_true", help="every page, not only the first")
    for command in (start, commands.choices["wait"]):
        command.add_argument("--interval", type=float, default=10.0, help="seconds between polls (10)")
        command.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Exit status: 0 done (a run: it completed), 1 the run failed or was cancelled, 2 a refused request
    (or an API that stayed unreachable), 3 `--timeout` passed with the run still going."""
    args = _parser().parse_args(argv)
    if not args.api:
        print(
            f"featurizer remote: --api is required (or ${API_ENV}): the stack's ApiUrl output",
            file=sys.stderr,
        )
        return 2
    api = Api(args.api, args.region)
    try:
        if args.command == "start":
            body = {"input": args.input, "options": args.options or {}, "dry_run": args.dry_run}
            body |= {k: v for k, v in (("from_run", args.from_run), ("predict_with", args.predict_with)) if v}
            created = api.call("POST", "/runs", body)
            print(json.dumps(created, indent=2), file=out)
            if not args.wait or args.dry_run:
                return 0
            status = wait(api, created["run_id"], out, args.interval, args.timeout)
        elif args.command == "wait":
            status = wait(api, args.run_id, out, args.interval, args.timeout)
        elif args.command == "list":
            list_runs(api, out, args.limit, args.drops, args.next, args.all)
            return 0
        elif args.command == "status":
            status = api.call("GET", f"/runs/{quote(args.run_id, safe='')}")
            print(json.dumps(status, indent=2), file=out)
            return 0
        else:
            print(json.dumps(api.call("DELETE", f"/runs/{quote(args.run_id, safe='')}"), indent=2), file=out)
            return 0
    except RemoteError as error:
        print(f"featurizer remote: {error}", file=sys.stderr)
        return 3 if isinstance(error, StillRunning) else 2
    return 0 if status["state"] in SUCCEEDED else 1
