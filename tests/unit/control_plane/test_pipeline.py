"""The drop path end to end, locally: S3 -> EventBridge rule (template.yaml's pattern) -> SQS -> handler.

moto forwards S3 "Object Created" events to EventBridge and EventBridge to SQS; the test then hands the
queue's messages to the uploads handler as the Lambda SQS event source would.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def test_uploads_flow_through_the_template_rule_and_queue(
    local_aws: Any, handlers: dict[str, Any], events: Any, context: Any, dataset: str
) -> None:
    rule = local_aws.template["Resources"]["InboxObjectCreatedRule"]["Properties"]
    pattern = json.loads(
        json.dumps(rule["EventPattern"]).replace('{"Ref": "DataBucket"}', '"featurizer-data"')
    )
    sqs = local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"uploads-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    eventbridge = local_aws.client("events")
    rule_name = f"inbox-{uuid.uuid4().hex[:8]}"
    eventbridge.put_rule(Name=rule_name, EventPattern=json.dumps(pattern), State="ENABLED")
    eventbridge.put_targets(Rule=rule_name, Targets=[{"Id": "uploads-queue", "Arn": queue_arn}])
    s3 = local_aws.client("s3")
    notifications = local_aws.template["Resources"]["DataBucket"]["Properties"]["NotificationConfiguration"]
    assert notifications["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    s3.put_bucket_notification_configuration(
        Bucket="featurizer-data", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    try:
        for i in range(25):
            s3.put_object(
                Bucket="featurizer-data", Key=f"inbox/{dataset}/Training/c{i % 3}/{i}.jpg", Body=b"j"
            )
        s3.put_object(Bucket="featurizer-data", Key=f"runs/{dataset}/not-an-upload.json", Body=b"{}")
        s3.put_object(Bucket="featurizer-data", Key=f"inbox/{dataset}/_START", Body=b"")

        bodies: list[str] = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [message["Body"] for message in batch]
        keys = [json.loads(body)["detail"]["object"]["key"] for body in bodies]
        assert len(keys) == 26, "the rule forwards inbox/ objects only"
        assert all(key.startswith(f"inbox/{dataset}/") for key in keys)

        assert handlers["UploadsFunction"](events.sqs(bodies), context) == {"batchItemFailures": []}
        assert len(local_aws.job_runs(dataset)) == 1
    finally:
        eventbridge.remove_targets(Rule=rule_name, Ids=["uploads-queue"])
        eventbridge.delete_rule(Name=rule_name)
        s3.put_bucket_notification_configuration(Bucket="featurizer-data", NotificationConfiguration={})
