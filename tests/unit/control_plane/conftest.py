"""Control-plane test fixtures: AWS served locally by moto in server mode, events as AWS delivers them.

One ``ThreadedMotoServer`` on 127.0.0.1 (random port) serves S3, DynamoDB, SNS, SQS, EventBridge and EMR
Serverless for the tests of this package; boto3 reaches it through ``AWS_ENDPOINT_URL``. Resources are
created from template.yaml's own definitions (table keys and index), and the handlers get exactly the
environment variables template.yaml sets, with the local resources' names.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.aws import create_table
from local.template import ACCOUNT, REGION, function_environment, functions, load_template, resolve
from tests.paths import EVENTS_DIR

DATA_BUCKET = "featurizer-data"  # the bucket name the event fixtures carry
ARTIFACTS_BUCKET = "featurizer-artifacts"
JOB_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/featurizer-JobRuntimeRole"


# ------------------------------------------------------------------ context and events


@dataclass
class FakeLambdaContext:
    """Stand-in for the Lambda context object (the attributes Powertools reads)."""

    function_name: str = "featurizer-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/featurizer-test-function"
    log_stream_name: str = "2026/11/24/[$LATEST]0123456789abcdef0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def load_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return loaded


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def s3_object_created(
    key: str, at: float, *, bucket: str = DATA_BUCKET, event_id: str | None = None
) -> dict[str, Any]:
    """An EventBridge S3 "Object Created" event for ``key`` (fixture eventbridge_s3_object_created.json)."""
    event = load_event("eventbridge_s3_object_created.json")
    event["id"] = event_id or str(uuid.uuid4())
    event["time"] = iso(at)
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["sequencer"] = hashlib.sha1(f"{key}{at}".encode()).hexdigest()[:18].upper()
    return event


def sqs_event(bodies: list[str], sent_at: float | None = None) -> dict[str, Any]:
    """An SQS event as Lambda receives it from the uploads queue (tests/events/sqs_eventbridge_...json), its
    messages sent at ``sent_at`` (the fixture's SentTimestamp unless given)."""
    template = load_event("sqs_eventbridge_s3_object_created.json")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body
        record["md5OfBody"] = hashlib.md5(body.encode()).hexdigest()
        if sent_at is not None:
            record["attributes"]["SentTimestamp"] = str(int(sent_at * 1000))
        records.append(record)
    return {"Records": records}


def scheduled_event(at: float) -> dict[str, Any]:
    event = load_event("eventbridge_scheduled_event.json")
    event["id"] = str(uuid.uuid4())
    event["time"] = iso(at)
    return event


def emr_state_change(
    job_run_id: str, state: str, at: float, application_id: str, state_details: str | None = None
) -> dict[str, Any]:
    event = load_event("emr_job_run_state_change_failed.json")
    event["id"] = str(uuid.uuid4())
    event["time"] = iso(at)
    detail = event["detail"]
    detail.update(jobRunId=job_run_id, applicationId=application_id, state=state)
    detail["arn"] = (
        f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{application_id}/jobruns/{job_run_id}"
    )
    if state_details is None:
        detail.pop("stateDetails", None)
    else:
        detail["stateDetails"] = state_details
    return event


def api_request(
    method: str,
    path: str,
    body: str | None = None,
    *,
    caller: str = "alice",
    role: str = "DataScientist",
    at: float | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) request with IAM authorization, from tests/events/apigw_http_*.json:
    signed by session ``caller`` of role ``role``."""
    name = {"POST": "apigw_http_post_runs.json", "GET": "apigw_http_get_run.json"}.get(
        method, "apigw_http_delete_run.json"
    )
    event = load_event(name)
    route = f"{method} /runs" if path == "/runs" else f"{method} /runs/{{run_id}}"
    if query is not None:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = query
    event["routeKey"] = route
    event["rawPath"] = path
    event["requestContext"]["routeKey"] = route
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["authorizer"]["iam"]["userArn"] = (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{caller}"
    )
    if at is not None:
        event["requestContext"]["timeEpoch"] = int(at * 1000)
    if path != "/runs":
        event["pathParameters"] = {"run_id": path.rsplit("/", 1)[-1]}
    else:
        event.pop("pathParameters", None)
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = body
        event["headers"]["content-length"] = str(len(body.encode()))
    return event


# ------------------------------------------------------------------ local AWS


@dataclass
class LocalAws:
    endpoint: str
    application_id: str
    table_name: str
    topic_arn: str
    resources: dict[str, str]
    template: dict[str, Any]

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def job_runs(self, name_prefix: str = "") -> list[dict[str, Any]]:
        emr = self.client("emr-serverless")
        try:
            runs = emr.list_job_runs(applicationId=self.application_id)["jobRuns"]
        except emr.exceptions.ResourceNotFoundException:  # moto: no job run started on the application yet
            return []
        return [run for run in runs if (run.get("name") or "").startswith(name_prefix)]

    def client_tokens(self, name: str) -> list[str]:
        """The clientToken of every StartJobRun call that created a job run called ``name``."""
        from moto.emrserverless.models import emrserverless_backends

        backend = emrserverless_backends[ACCOUNT][REGION]
        return [run.client_token for run in backend.job_runs.get(self.application_id, []) if run.name == name]

    def set_job_state(
        self, job_run_id: str, state: str, details: str | None = None, billed: dict[str, float] | None = None
    ) -> None:
        """Move a job run along as EMR would (the moto server runs in this process), with the hours EMR
        billed it once it ended (GetJobRun's billedResourceUtilization)."""
        run = self._moto_job_run(job_run_id)
        run.state = state
        run.state_details = details
        if billed is not None:
            run.billed_resource_utilization = billed

    def stamp_creation_time(self, job_run_id: str) -> None:
        """Give a job run the creation time EMR would: moto stamps every job run at midnight (UTC) of its
        day, so ListJobRuns' createdAtAfter finds none created since a time in the day."""
        self._moto_job_run(job_run_id).created_at = datetime.now(UTC).replace(tzinfo=None)

    def _moto_job_run(self, job_run_id: str) -> Any:
        from moto.emrserverless.models import emrserverless_backends

        backend = emrserverless_backends[ACCOUNT][REGION]
        for run in backend.job_runs[self.application_id]:
            if run.id == job_run_id:
                return run
        raise AssertionError(f"no job run {job_run_id}")


@pytest.fixture(scope="package")
def local_aws() -> Iterator[LocalAws]:
    """The local services, for the tests of this package only: the environment is restored afterwards."""
    saved = dict(os.environ)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=endpoint,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    template = load_template()
    aws = LocalAws(endpoint, "", "featurizer-state", "", {}, template)
    s3 = aws.client("s3")
    for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    create_table(aws.client("dynamodb"), template, aws.table_name)
    uploads_queue = aws.client("sqs").create_queue(QueueName="featurizer-uploads")["QueueUrl"]
    aws.topic_arn = aws.client("sns").create_topic(Name="featurizer-run-reports")["TopicArn"]
    emr_props = template["Resources"]["EmrApplication"]["Properties"]
    aws.application_id = aws.client("emr-serverless").create_application(
        name="featurizer", releaseLabel=resolve(emr_props["ReleaseLabel"], template, {}), type="SPARK"
    )["applicationId"]
    aws.resources = {
        "StateTable": aws.table_name,
        "DataBucket": DATA_BUCKET,
        "ArtifactsBucket": ARTIFACTS_BUCKET,
        "EmrApplication": aws.application_id,
        "JobRuntimeRole.Arn": JOB_ROLE_ARN,
        "RunReportsTopic": aws.topic_arn,
        "UploadsQueue": uploads_queue,
    }
    try:
        yield aws
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def import_handler(handler: str) -> tuple[Any, Callable[..., Any]]:
    """Import ``module/path.function`` from lambda/ the way the Lambda Python runtime does."""
    module_name, function = handler.rsplit(".", 1)
    module = importlib.import_module(module_name.replace("/", "."))
    return module, getattr(module, function)


@pytest.fixture(scope="package")
def handlers(local_aws: LocalAws) -> dict[str, Callable[..., Any]]:
    """Every function's handler, imported with the environment template.yaml gives it (one import each)."""
    loaded: dict[str, Callable[..., Any]] = {}
    for name, props in functions(local_aws.template).items():
        os.environ.update(function_environment(local_aws.template, name, local_aws.resources))
        loaded[name] = import_handler(props["Handler"])[1]
    return loaded


class Events:
    """Builders of events as AWS delivers them, from the JSON fixtures in tests/events/."""

    load = staticmethod(load_event)
    s3_object_created = staticmethod(s3_object_created)
    sqs = staticmethod(sqs_event)
    scheduled = staticmethod(scheduled_event)
    emr_state_change = staticmethod(emr_state_change)
    api = staticmethod(api_request)


@pytest.fixture
def events() -> type[Events]:
    """The builders, with API requests signed by a caller of the test's own (runs in flight are counted per
    caller, and the local services live for the whole session)."""

    class CallerEvents(Events):
        api = staticmethod(functools.partial(api_request, caller=f"user-{uuid.uuid4().hex[:8]}"))

    return CallerEvents


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def sns_inbox(local_aws: LocalAws) -> Callable[[], list[dict[str, str]]]:
    """Subscribe a fresh SQS queue to the topic; calling the result returns the messages published since."""
    sqs = local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"sns-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    local_aws.client("sns").subscribe(TopicArn=local_aws.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict[str, str]]:
        messages: list[dict[str, str]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                envelope = json.loads(message["Body"])
                messages.append({"Subject": envelope.get("Subject", ""), "Message": envelope["Message"]})
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return received


@pytest.fixture
def inbox(local_aws: Any, dataset: str) -> str:
    """An inbox with two images; returns its s3:// URI."""
    bucket = local_aws.resources["DataBucket"]
    s3 = local_aws.client("s3")
    for key in ("Training/Banana/img_0001.jpg", "Test/Banana/img_0002.jpg"):
        s3.put_object(Bucket=bucket, Key=f"inbox/{dataset}/{key}", Body=b"\xff\xd8\xff\xe0 jpeg")
    return f"s3://{bucket}/inbox/{dataset}/"


@pytest.fixture
def dataset() -> str:
    """A dataset name unique to the test (the local services live for the whole session)."""
    return f"ds{uuid.uuid4().hex[:10]}"
