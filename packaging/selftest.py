"""Start a small run on the deployed service (or the local stack), follow it to its end, and judge it.

    python packaging/selftest.py [--stack-name image-featurizer]        # the stack in your AWS account
    python packaging/selftest.py --local [--state-dir .local-stack]     # a running `make stack`

It uploads the project's own sample images (with four broken files) to inbox/selftest-<UTC time>/, starts
a run through the HTTP API (SigV4-signed with your AWS credentials) with {"self_test": true}, follows it
with GET /runs/{run_id} until it ends, and reads its manifest. It prints one verdict: PASS with the run's
figures and its report link, or FAIL with the cause in words and the driver log's last lines; exit status
0 or 1 (2: the service could not be reached). `packaging/deploy.py` runs it after every deploy.
docs/control-plane.md says what it proves and what it does not.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import importlib.metadata
import json
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
CHECKED_PACKAGES = ("numpy", "onnxruntime", "opencv-python-headless")
LOG_LINES = 20
ANSWER_SECONDS = 60
NO_ANSWER = 0  # the status given when the API did not answer at all
REFUSALS = 3  # GET answers in a row that are not 200 before the self-test gives up following the run
SELF_TEST_TIMEOUT_SECONDS = 30 * 60  # an application's first start, then a few minutes of work
LOCAL_TIMEOUT_SECONDS = 10 * 60


if str(ROOT / "lambda") not in sys.path:
    sys.path.insert(0, str(ROOT / "lambda"))  # the API's run states and the reserved dataset prefix


class ServiceUnreachable(RuntimeError):
    """The service to test cannot be found or reached; the message says why and what to do."""


@dataclass
class Service:
    """What the self-test needs of a deployment: its API, its data bucket, and how to reach them."""

    api_url: str
    data_bucket: str
    region: str
    s3: Any
    sign: Callable[[Any], None] | None  # signs a botocore AWSRequest in place; None for the local stack
    model_key: str | None = None  # the stack's ModelKey: the model a run loads unless told otherwise

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        from botocore.awsrequest import AWSRequest

        data = json.dumps(body).encode() if body is not None else None
        request = AWSRequest(
            method,
            f"{self.api_url.rstrip('/')}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        if self.sign is not None:
            self.sign(request)
        prepared = request.prepare()
        opened = urllib.request.Request(
            prepared.url, data=data, headers=dict(prepared.headers), method=method
        )
        try:
            with urllib.request.urlopen(opened, timeout=ANSWER_SECONDS) as response:
                return response.status, _body(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _body(error.read())
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, cut short
            return NO_ANSWER, {"problem": f"no answer from {self.api_url}: {getattr(error, 'reason', error)}"}


def _body(raw: bytes) -> dict[str, Any]:
    """The API's JSON answer; anything else (a gateway's HTML page) is kept, cut short, as the problem."""
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        return {"problem": raw[:200].decode(errors="replace")}
    return answer if isinstance(answer, dict) else {"problem": str(answer)[:200]}


def _answered(method: str, path: str, status: int, body: dict[str, Any]) -> str:
    problem = body.get("problem", body)
    return (
        f"{method} {path}: {problem}"
        if status == NO_ANSWER
        else f"{method} {path} answered {status}: {problem}"
    )


def aws_service(stack_name: str, region: str | None) -> Service:
    import boto3
    from botocore.auth import SigV4Auth

    session = boto3.Session(region_name=region)
    credentials = session.get_credentials()
    if credentials is None or session.region_name is None:
        raise ServiceUnreachable("no AWS credentials or region: run `aws configure` (or set AWS_PROFILE)")
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception as error:  # botocore: the stack does not exist, or the caller may not describe it
        raise ServiceUnreachable(f"stack {stack_name} in {session.region_name}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [name for name in ("ApiUrl", "DataBucketName") if name not in outputs]
    if missing:
        raise ServiceUnreachable(
            f"stack {stack_name} ({stack['StackStatus']}) has no output {', '.join(missing)}: is it this "
            "project's stack, deployed to the end (packaging/deploy.py)?"
        )
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    signer = SigV4Auth(credentials, "execute-api", session.region_name)
    return Service(
        outputs["ApiUrl"],
        outputs["DataBucketName"],
        session.region_name,
        session.client("s3"),
        signer.add_auth,
        parameters.get("ModelKey") or None,
    )


def local_service(state_dir: Path) -> Service:
    import boto3

    described = state_dir / "stack.json"
    if not described.is_file():
        raise ServiceUnreachable(f"no local stack in {state_dir}: start one with `make stack`")
    stack = json.loads(described.read_text())
    credentials = stack["credentials"]
    s3 = boto3.client(
        "s3",
        endpoint_url=stack["endpoints"]["aws"],
        region_name=credentials["AWS_DEFAULT_REGION"],
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
    )
    return Service(
        stack["endpoints"]["api"], stack["data_bucket"], credentials["AWS_DEFAULT_REGION"], s3, None
    )


def pinned_versions() -> dict[str, str]:
    """The versions the job environment pins, its Python (major.minor) and the pyspark matching the
    application's Spark (pyproject.toml, as installed here)."""
    pins = {}
    for requirement in importlib.metadata.requires("image-featurizer") or []:
        pinned, _, marker = requirement.partition(";")
        name, equals, version = pinned.partition("==")
        if equals and marker.strip() in ("", 'extra == "spark"'):
            pins[name.strip()] = version.strip()
    python = re.search(r">=\s*(\d+\.\d+)", importlib.metadata.metadata("image-featurizer")["Requires-Python"])
    return pins | {"python": python.group(1) if python else ""}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    lines: list[str]


@dataclass(frozen=True)
class Sidecar:
    """The `.sha256` file deploy.py uploads beside the model: its digest, or why it could not be read.
    Neither for a model outside S3: there is nothing deployed to compare with."""

    digest: str | None = None
    problem: str | None = None


def judge(
    run: dict[str, Any],
    manifest: dict[str, Any] | None,
    planted: tuple[int, int],
    service: Service,
    sidecar: Sidecar,
) -> Verdict:
    """PASS or FAIL for an ended run, from its GET answer and its manifest."""
    from common.emr import ENVIRONMENT_PYTHON
    from common.runs import COMPLETED

    if run["state"] != COMPLETED or manifest is None:
        failure = run.get("failure") or {}
        stage = f" in {failure['stage']}" if failure.get("stage") else ""
        return Verdict(
            False, [f"the run ended {run['state']}{stage}: {failure.get('message') or 'no reason given'}"]
        )
    problems = []
    counts = manifest["counts"]
    if (counts["images_found"], counts["images_rejected"]) != planted:
        problems.append(
            f"the run found {counts['images_found']} images and rejected {counts['images_rejected']}; "
            f"the self-test uploaded {planted[0]}, {planted[1]} of them broken"
        )
    self_test = manifest.get("self_test") or {}
    pins = pinned_versions()
    python = pins["python"]
    for worker in self_test.get("workers", []):
        if not worker["python"].startswith(f"{python}.") or not worker["executable"].endswith(
            ENVIRONMENT_PYTHON.removeprefix(".")
        ):
            problems.append(
                f"a worker ran Python {worker['python']} at {worker['executable']}, not the job "
                f"environment's Python {python} ({ENVIRONMENT_PYTHON})"
            )
        problems += [
            f"a worker ran {name} {worker[name]}, the environment pins {pins[name]}: rebuild and upload it"
            for name in CHECKED_PACKAGES
            if name in pins and worker.get(name) != pins[name]
        ]
        if worker.get("region") != service.region:
            problems.append(
                f"a worker's AWS region is {worker.get('region')!r}, the stack's is {service.region}"
            )
    if not self_test.get("workers"):
        problems.append("the run reported no worker environment: was it started with self_test?")
    versions = manifest.get("versions", {})
    if not str(versions.get("python")).startswith(f"{python}."):
        problems.append(
            f"the driver ran Python {versions.get('python')}, not the job environment's Python {python}: "
            f"the run's spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON must be {ENVIRONMENT_PYTHON}"
        )
    spark = versions.get("spark")
    if "pyspark" in pins and spark != pins["pyspark"]:
        problems.append(
            f"the application runs Spark {spark}, the environment's pyspark is {pins['pyspark']}: deploy "
            "a ReleaseLabel whose Spark matches (template.yaml's ReleaseSpark)"
        )
    if manifest.get("region") != service.region:
        problems.append(
            f"the driver's AWS region is {manifest.get('region')!r}, the stack's is {service.region}"
        )
    for check in self_test.get("access", []):
        if check["passed"]:
            continue
        if check["observed"] == "allowed":
            problems.append(
                f"the job's role may {check['check']} ({check['uri']}), and must not: give it no more than "
                "template.yaml's JobRuntimeRole grants"
            )
        else:
            observed = check["observed"]
            problems.append(
                f"the job's role could not be checked on {check['check']} ({check['uri']}): {observed}"
            )
        if check.get("detail"):
            problems[-1] += f" ({check['detail']})"
    model = manifest["model"]
    if service.model_key and not model["model_file"].endswith(f"/{service.model_key}"):
        problems.append(
            f"the run loaded {model['model_file']}, not the stack's model {service.model_key} (ModelKey): "
            "the API's function does not have the deployed configuration"
        )
    if sidecar.problem:
        problems.append(sidecar.problem)
    elif sidecar.digest is not None and model["model_sha256"] != sidecar.digest:
        problems.append(
            f"the run's model has sha256 {model['model_sha256']}, its .sha256 file says {sidecar.digest}"
        )
    if problems:
        return Verdict(False, problems)
    workers = self_test["workers"][0]
    summary = run.get("summary", {})
    allowed = ", ".join(c["check"] for c in self_test["access"] if c["expected"] == "allowed")
    refused = ", ".join(c["check"] for c in self_test["access"] if c["expected"] == "refused")
    return Verdict(
        True,
        [
            f"{summary.get('images_featurized')} images featurized, "
            f"{summary.get('images_rejected')} broken ones rejected, "
            f"accuracy {summary.get('accuracy') or 0:.3f}, in {summary.get('duration_seconds') or 0:.0f} s",
            f"workers: Python {workers['python']} at {workers['executable']} ({workers['machine']}), "
            + ", ".join(f"{name} {workers[name]}" for name in CHECKED_PACKAGES),
            f"region: {service.region}",
            f"job role: allowed to {allowed}; refused to {refused}"
            if self_test["access"]
            else "job role: not checked (a local input)",
            f"model: sha256 {model['model_sha256'][:16]}... "
            + ("as its .sha256 file says" if sidecar.digest else "(not compared: a model outside S3)"),
        ],
    )


def driver_log(service: Service, logs: str | None, *, attempts: int = 3, pause: float = 5.0) -> list[str]:
    """The driver's output (EMR writes its stdout and stderr under the run's log location, shortly after
    the run ends), or why there is none."""
    if not logs:
        return ["(no log location: the job run never started)"]
    bucket, _, prefix = logs.removeprefix("s3://").partition("/")
    for attempt in range(1, attempts + 1):
        lines, missing = [], False
        for stream in ("stdout", "stderr"):
            key = f"{prefix}SPARK_DRIVER/{stream}.gz"
            try:
                body = service.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as error:  # botocore: not written (yet), or not readable with these credentials
                lines.append(f"(no driver {stream} at s3://{bucket}/{key}: {error})")
                missing = True
                continue
            lines += gzip.decompress(body).decode(errors="replace").splitlines()
        if not missing or attempt == attempts:
            return lines
        time.sleep(pause)
    return lines


def _cause_from_log(lines: list[str]) -> str | None:
    """The job's own one-line error, which it prints as `error: ...` before it exits."""
    return next(
        (line.removeprefix("error: ") for line in reversed(lines) if line.startswith("error: ")), None
    )


def _upload_samples(service: Service, dataset: str) -> tuple[tuple[int, int], list[str]]:
    """The project's sample images (and its broken files) under inbox/<dataset>/: (images, broken ones),
    and the keys written."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    from common.runs import INBOX_PREFIX
    from featurizer.samples import generate

    with tempfile.TemporaryDirectory(prefix="selftest-") as scratch:
        samples = generate(Path(scratch) / dataset, per_class=4, seed=11)
        keys = []
        try:
            for path in sorted(p for p in samples.root.rglob("*") if p.is_file()):
                keys.append(f"{INBOX_PREFIX}{dataset}/{path.relative_to(samples.root).as_posix()}")
                service.s3.upload_file(str(path), service.data_bucket, keys[-1])
        except (S3UploadFailedError, ClientError, BotoCoreError) as error:
            raise ServiceUnreachable(
                f"cannot upload the self-test's images to s3://{service.data_bucket}/{keys[-1]}: {error}. "
                "Your AWS credentials need s3:PutObject on the data bucket"
            ) from error
    return (samples.images, samples.defective), keys


def _remove(service: Service, keys: list[str]) -> None:
    """Delete a passed self-test's input; a key that will not go is left, as the next run ignores it."""
    for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys
        objects = [{"Key": key} for key in keys[start : start + 1000]]
        service.s3.delete_objects(Bucket=service.data_bucket, Delete={"Objects": objects, "Quiet": True})


def _ended(run: dict[str, Any]) -> bool:
    """Ended, and so has its EMR job run: its driver log is written by then."""
    from common.models import TERMINAL_STATES
    from common.runs import ENDED_STATES

    return run.get("state") in ENDED_STATES and run.get("emr", {}).get("state", "SUCCESS") in TERMINAL_STATES


def follow(
    service: Service, run_id: str, *, timeout: float, every: float
) -> tuple[dict[str, Any], str | None]:
    """GET /runs/{run_id} until the run ends: its last answer, and why it was not followed to its end."""
    path = f"/runs/{run_id}"
    deadline, run, refusals = time.monotonic() + timeout, {"state": "STARTING"}, 0
    while time.monotonic() < deadline:
        status, answer = service.call("GET", path)
        if status == 200:
            run, refusals = answer, 0
            if _ended(run):
                return run, None
        else:
            refusals += 1
            if refusals == REFUSALS:
                return run, f"{_answered('GET', path, status, answer)} ({REFUSALS} times in a row)"
        time.sleep(every)
    return run, f"run {run_id} had not ended after {timeout:.0f} s (state {run.get('state')})"


def _manifest(service: Service, run: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """A completed run's manifest.json, or why it cannot be read."""
    key = f"{run['output'].removeprefix(f's3://{service.data_bucket}/')}manifest.json"
    try:
        return json.loads(service.s3.get_object(Bucket=service.data_bucket, Key=key)["Body"].read()), None
    except Exception as error:  # botocore: missing or not readable; json: not a manifest
        return None, f"the run completed, but s3://{service.data_bucket}/{key} cannot be read: {error}"


def _deployed_sha256(service: Service, manifest: dict[str, Any]) -> Sidecar:
    """The `.sha256` file beside the model the run loaded, when that model is on S3."""
    model = manifest.get("model", {}).get("model_file", "")
    if not model.startswith("s3://"):
        return Sidecar()
    bucket, _, key = model.removeprefix("s3://").partition("/")
    try:
        body = service.s3.get_object(Bucket=bucket, Key=f"{key}.sha256")["Body"].read()
        return Sidecar(digest=body.decode().split()[0])
    except Exception as error:  # botocore: missing or not readable here; an empty or binary file
        return Sidecar(
            problem=f"{model}.sha256 cannot be read ({error}): deploy.py uploads one beside every model; "
            "redeploy, or upload the model with its .sha256 file"
        )


def _print_failure(out: TextIO, cause: str, details: list[str], log: list[str]) -> None:
    print(f"FAIL: {cause}", file=out)
    for line in [*details, "driver log, last lines:"]:
        print(f"  {line}", file=out)
    for line in log[-LOG_LINES:]:
        print(f"    {line}", file=out)


def self_test(service: Service, *, timeout: float, every: float, out: TextIO) -> int:
    from common.runs import COMPLETED, INBOX_PREFIX, SELF_TEST_PREFIX

    dataset = f"{SELF_TEST_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}"
    planted, uploaded = _upload_samples(service, dataset)
    body = {"input": f"s3://{service.data_bucket}/{INBOX_PREFIX}{dataset}/", "options": {"self_test": True}}
    status, created = service.call("POST", "/runs", body)
    if status == NO_ANSWER:
        raise ServiceUnreachable(_answered("POST", "/runs", status, created))
    if status != 202 or "run_id" not in created:
        print(f"FAIL: {_answered('POST', '/runs', status, created)}", file=out)
        return 1
    run_id = created["run_id"]
    print(f"self-test run {run_id} started (EMR job run {created.get('jobRunId')}); following it", file=out)
    run, unfollowed = follow(service, run_id, timeout=timeout, every=every)
    if unfollowed:
        status, cancelled = service.call("DELETE", f"/runs/{run_id}")
        stopped = "cancelled" if status == 202 else _answered("DELETE", f"/runs/{run_id}", status, cancelled)
        details = [f"run: {run_id} ({stopped}), logs: {run.get('logs', 'none')}"]
        _print_failure(out, unfollowed, details, driver_log(service, run.get("logs"), pause=every))
        return 1
    manifest, unread = _manifest(service, run) if run["state"] == COMPLETED else (None, None)
    verdict = (
        Verdict(False, [unread])
        if unread
        else judge(run, manifest, planted, service, _deployed_sha256(service, manifest or {}))
    )
    if verdict.passed:
        print(f"PASS: self-test run {run_id} completed: {verdict.lines[0]}", file=out)
        for line in [*verdict.lines[1:], f"report: {run.get('report', {}).get('url', 'none')}"]:
            print(f"  {line}", file=out)
        _remove(service, uploaded)  # its run folder stays, as every run's does
        return 0
    log = driver_log(service, run.get("logs"), pause=every)
    # A run that stopped before it wrote _FAILED.json (a bad argument, a refused permission) said why on
    # its way out; EMR's own state details only give the exit code.
    told = (run.get("failure") or {}).get("stage") is None and manifest is None and not unread
    cause = (_cause_from_log(log) if told else None) or verdict.lines[0]
    details = [
        *verdict.lines[1:],
        f"run: {run_id}, logs: {run.get('logs', 'none')}",
        f"input (kept to look into): s3://{service.data_bucket}/{INBOX_PREFIX}{dataset}/",
    ]
    _print_failure(out, cause, details, log)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack-name", default="image-featurizer")
    parser.add_argument("--region", default=None, help="default: your AWS configuration's")
    parser.add_argument("--local", action="store_true", help="test the local stack instead (make stack)")
    parser.add_argument(
        "--state-dir", type=Path, default=ROOT / ".local-stack", help="the local stack's state folder"
    )
    parser.add_argument("--timeout-minutes", type=float, default=None, help="default: 30 on AWS, 10 locally")
    args = parser.parse_args(argv)
    try:
        service = local_service(args.state_dir) if args.local else aws_service(args.stack_name, args.region)
        default = LOCAL_TIMEOUT_SECONDS if args.local else SELF_TEST_TIMEOUT_SECONDS
        timeout = 60 * args.timeout_minutes if args.timeout_minutes else default
        return self_test(service, timeout=timeout, every=2 if args.local else 10, out=sys.stdout)
    except ServiceUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
