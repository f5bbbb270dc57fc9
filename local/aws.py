"""The local AWS services: moto in server mode on 127.0.0.1, with template.yaml's resources created in it.

Buckets (versioned; the data bucket with EventBridge notifications), the uploads queue and both dead-letter
queues, the state table (keys, index and TTL from the template), the run-reports topic, and the EventBridge
rules: the inbox rule to the uploads queue, and each function's rules to that function's invocation queue
(``local-invoke-<Function>``, the local stand-in for Lambda's asynchronous invocation queue). The topic is
subscribed by one more queue, ``local-sns-messages``, so that published messages can be shown.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local import eventbridge, sqs
from local.iam import JobRoleEnforcer
from local.template import ACCOUNT, ARTIFACTS_BUCKET, DATA_BUCKET, REGION, StackTemplate

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
SNS_QUEUE = "local-sns-messages"


def invoke_queue(function: str) -> str:
    return f"local-invoke-{function}"


class EnforcingMotoServer(ThreadedMotoServer):
    """moto's threaded server with the job runtime role's S3 permissions enforced in front of it (moto
    5.2.5's own server, whose app is built in `_server_entry`; local/iam.py says what is enforced)."""

    def __init__(self, host: str, port: int, policy: Path) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self.policy = policy

    def _server_entry(self) -> None:
        app = JobRoleEnforcer(DomainDispatcherApplication(create_backend_app), self.policy)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class LocalAws:
    def __init__(self, host: str, port: int, policy: Path) -> None:
        self.endpoint = f"http://{host}:{port}"
        self.server = EnforcingMotoServer(host, port, policy)
        self.queues: dict[str, str] = {}  # name -> URL

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        eventbridge.install()
        sqs.install()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def create_topic(self) -> str:
        topic_arn: str = self.client("sns").create_topic(Name="featurizer-RunReportsTopic")["TopicArn"]
        return topic_arn

    def queue_arn(self, name: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    def _queue(self, name: str, attributes: dict[str, str] | None = None) -> str:
        url: str = self.client("sqs").create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
        self.queues[name] = url
        return url

    def create_resources(self, stack: StackTemplate, topic_arn: str) -> None:
        s3 = self.client("s3")
        for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_notification_configuration(
            Bucket=DATA_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        create_table(self.client("dynamodb"), stack.template, stack.resources["StateTable"])
        for name in ("UploadsDeadLetterQueue", "EventsDeadLetterQueue"):
            self._queue(name)
        uploads = stack.resource("UploadsQueue")["Properties"]
        redrive = uploads["RedrivePolicy"]
        self._queue(
            "UploadsQueue",
            {
                "VisibilityTimeout": str(uploads["VisibilityTimeout"]),
                "RedrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": self.queue_arn("UploadsDeadLetterQueue"),
                        "maxReceiveCount": str(redrive["maxReceiveCount"]),
                    }
                ),
            },
        )
        events = self.client("events")
        for rule in stack.rules():
            target_queue = rule.target if rule.target == "UploadsQueue" else invoke_queue(rule.target)
            if target_queue not in self.queues:
                self._queue(target_queue)
            events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.pattern), State="ENABLED")
            events.put_targets(
                Rule=rule.name, Targets=[{"Id": "target", "Arn": self.queue_arn(target_queue)}]
            )
        self._queue(SNS_QUEUE)
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=self.queue_arn(SNS_QUEUE))


def create_table(dynamodb: Any, template: dict[str, Any], name: str) -> None:
    """The state table as template.yaml defines it (keys, index, TTL)."""
    props = template["Resources"]["StateTable"]["Properties"]
    dynamodb.create_table(
        TableName=name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
