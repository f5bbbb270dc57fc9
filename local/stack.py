"""The local stack: start everything in order, stop everything in reverse, whatever failed in between."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pyspark

from featurizer.session import require_s3a, s3a_jars
from local import api, artifacts, emr, eventbridge
from local.aws import CREDENTIALS, SNS_QUEUE, LocalAws, invoke_queue
from local.events import Dispatcher
from local.iam import JOB_CREDENTIALS, POLICY_FILE, job_role_statements, write_policy
from local.jobs import JobRun, Runtime
from local.lambdas import LocalFunction, function_environment
from local.ports import HOST, Ports, check_free
from local.template import ACCOUNT, APPLICATION_ID, DATA_BUCKET, StackTemplate, resource_names

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
STACK_FILE = "stack.json"  # marks a state folder as the stack's own, so a later start may empty it


class StateDirError(RuntimeError):
    """``--state-dir`` names a folder the stack did not make: it is never emptied."""


def check_state_dir(state: Path) -> None:
    """Refuse a state folder that is neither absent, empty, nor an earlier stack's (its ``stack.json``)."""
    if not state.exists() or (state.is_dir() and not any(state.iterdir())):
        return
    if not state.is_dir() or not (state / STACK_FILE).is_file():
        raise StateDirError(
            f"{state} is not empty and holds no {STACK_FILE} from an earlier local stack; the stack empties "
            "its state folder at start, so give --state-dir a new or empty folder"
        )


@dataclass(frozen=True)
class StackOptions:
    ports: Ports = field(default_factory=Ports)
    quiet_seconds: int = 10  # template default 120 (its minimum is 10)
    sweep_seconds: float = 5  # template: rate(1 minute)
    batch_window_seconds: float = 2  # template: MaximumBatchingWindowInSeconds 20
    spark_cores: int = 2
    driver_memory: str = "2g"  # template: a 16 GB driver worker
    state_dir: Path = ROOT / ".local-stack"


def rate_seconds(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)", expression)
    if not match:
        raise ValueError(f"unsupported schedule {expression!r}")
    unit = {"s": 1, "m": 60, "h": 3600}[match.group(2)[0]]
    return int(match.group(1)) * unit


def uploads_mapping(template: StackTemplate) -> dict[str, Any]:
    """The uploads queue's event source mapping (UploadsEventSource's properties)."""
    properties: dict[str, Any] = template.resource("UploadsEventSource")["Properties"]
    return properties


class LocalStack:
    def __init__(
        self, options: StackOptions, on_notification: Callable[[str, str], None] | None = None
    ) -> None:
        self.options = options
        self.on_notification = on_notification
        self.aws = LocalAws(HOST, options.ports.aws, options.state_dir / POLICY_FILE)
        self.functions: dict[str, LocalFunction] = {}
        self.extra_environments: list[LocalFunction] = []  # the uploads function's, beyond its first
        self.dispatcher: Dispatcher | None = None
        self.application: emr.Application | None = None
        self.servers: list[ThreadingHTTPServer] = []
        self.notifications: list[dict[str, str]] = []
        self._stops: list[Callable[[], None]] = []

    @property
    def endpoints(self) -> dict[str, str]:
        ports = self.options.ports
        return {
            "aws": self.aws.endpoint,
            "emr": f"http://{HOST}:{ports.emr}",
            "api": f"http://{HOST}:{ports.api}",
        }

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        options = self.options
        check_free(options.ports)
        state = options.state_dir
        check_state_dir(state)
        require_s3a()
        built = artifacts.build()  # before anything runs: a failed build leaves nothing to stop
        shutil.rmtree(state, ignore_errors=True)
        (state / "logs").mkdir(parents=True)
        (state / STACK_FILE).write_text(self.describe_json())  # at once: a failed start may be retried

        buckets = {name: resource_names("", "")[name] for name in ("DataBucket", "ArtifactsBucket")}
        write_policy(state / POLICY_FILE, job_role_statements(buckets))
        self.aws.start()
        self._stops.append(self.aws.stop)
        topic_arn = self.aws.create_topic()
        template = StackTemplate(
            resource_names(topic_arn, self.aws.endpoint), {"QUIET_SECONDS": str(options.quiet_seconds)}
        )
        self.aws.create_resources(template, topic_arn)
        env = {spec.name: spec.environment for spec in template.functions()}
        artifacts.upload(
            built, self.aws.client("s3"), template.resources["ArtifactsBucket"], next(iter(env.values()))
        )

        self._start_emr(template, state)
        for spec in template.functions():
            environment = function_environment(spec, self.endpoints, CREDENTIALS)
            self.functions[spec.name] = LocalFunction(spec, environment, state / "logs")
        mapping = uploads_mapping(template)
        uploads = self.functions[mapping["FunctionName"]["Ref"]]
        self.extra_environments = [  # Lambda runs the mapping's batches in this many environments at once
            LocalFunction(uploads.spec, uploads.environment, state / "logs")
            for _ in range(int(mapping["ScalingConfig"]["MaximumConcurrency"]) - 1)
        ]
        self._stops.append(self._stop_functions)
        environments = [*self.functions.values(), *self.extra_environments]
        starting = [Thread(target=f.start) for f in environments]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        for function in environments:
            if function.process is None:
                function.start()  # its cold start failed: raise the error here

        self._start_events(template, options)
        server = api.make_server(
            self.functions[template.api_function()], template.http_routes(), HOST, options.ports.api
        )
        self._serve(server)
        (state / STACK_FILE).write_text(self.describe_json())

    def _start_emr(self, template: StackTemplate, state: Path) -> None:
        capacity = {
            "cpu": template.parameter("MaximumCpu"),
            "memory": template.parameter("MaximumMemory"),
            "disk": template.parameter("MaximumDisk"),
        }
        record = emr.application_record(
            APPLICATION_ID, "featurizer-local", template.parameter("ReleaseLabel"), capacity
        )
        runtime = Runtime(
            s3=self.aws.client("s3"),
            s3_endpoint=self.aws.endpoint,
            aws_env=JOB_CREDENTIALS | {"AWS_ENDPOINT_URL": self.aws.endpoint},
            s3a_jars=s3a_jars(),
            spark_home=Path(pyspark.__file__).parent,
            state_dir=state / "emr",
            cores=self.options.spark_cores,
            driver_memory=self.options.driver_memory,
        )

        def emit(run: JobRun, previous: str) -> None:
            eventbridge.publish(eventbridge.job_run_state_change(run.state_change_detail(previous)))

        self.application = emr.Application(
            record, runtime, emit, created_by=f"arn:aws:sts::{ACCOUNT}:assumed-role/local-stack/featurizer"
        )
        self._stops.append(self.application.shutdown)
        self._serve(emr.make_server(self.application, HOST, self.options.ports.emr))

    def _start_events(self, template: StackTemplate, options: StackOptions) -> None:
        dispatcher = Dispatcher(self.aws.client("sqs"))
        self.dispatcher = dispatcher
        self._stops.append(dispatcher.stop)
        queues = self.aws.queues
        mapping = uploads_mapping(template)
        dispatcher.event_source_mapping(
            queues["UploadsQueue"],
            self.aws.queue_arn("UploadsQueue"),
            [self.functions[mapping["FunctionName"]["Ref"]], *self.extra_environments],
            int(mapping["BatchSize"]),
            min(float(mapping["MaximumBatchingWindowInSeconds"]), options.batch_window_seconds),
        )
        for target in dict.fromkeys(
            rule.target for rule in template.rules() if rule.target in self.functions
        ):
            dispatcher.asynchronous(
                queues[invoke_queue(target)], self.functions[target], queues["EventsDeadLetterQueue"]
            )
        for function, expression in template.schedules().items():
            period = min(rate_seconds(expression), options.sweep_seconds)
            dispatcher.schedule(self.functions[function], period)
        dispatcher.subscription(queues[SNS_QUEUE], self._notified)

    def _notified(self, subject: str, message: str) -> None:
        self.notifications.append({"Subject": subject, "Message": message})
        with (self.options.state_dir / "sns-messages.jsonl").open("a") as log:
            log.write(json.dumps({"Subject": subject, "Message": message}) + "\n")
        if self.on_notification is not None:
            self.on_notification(subject, message)

    def _serve(self, server: ThreadingHTTPServer) -> None:
        thread = Thread(target=server.serve_forever, name=f"http-{server.server_address[1]}", daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(10)

        self.servers.append(server)
        self._stops.append(stop)

    def _stop_functions(self) -> None:
        for function in [*self.functions.values(), *self.extra_environments]:
            function.stop()

    def stop(self) -> None:
        """Stop in reverse order; every step runs even if an earlier one fails."""
        while self._stops:
            step = self._stops.pop()
            try:
                step()
            except Exception:
                logger.exception("stopping the local stack: %s failed", getattr(step, "__qualname__", step))

    def describe(self) -> dict[str, Any]:
        return {
            "endpoints": self.endpoints,
            "data_bucket": DATA_BUCKET,
            "inbox": f"s3://{DATA_BUCKET}/inbox/<dataset>/",
            "application_id": APPLICATION_ID,
            "quiet_seconds": self.options.quiet_seconds,
            "sweep_seconds": self.options.sweep_seconds,
            "state_dir": str(self.options.state_dir),
            "job_role_policy": str(self.options.state_dir / POLICY_FILE),
            "credentials": {k: v for k, v in CREDENTIALS.items() if k != "AWS_SESSION_TOKEN"},
        }

    def describe_json(self) -> str:
        return json.dumps(self.describe(), indent=2)
