"""How long upload events may have waited in the uploads queue unrecorded, so that a backlog never passes
for quiet uploads.

SQS's GetQueueAttributes counts a queue's messages but gives no age (ApproximateAgeOfOldestMessage is a
CloudWatch metric, minutes late). So the uploads function records, once per batch, the newest SentTimestamp
among the messages it recorded, in a watermark that only moves forward; the queue hands out messages
roughly in the order they were sent, so one still queued was sent after it. With the queue empty there is
no backlog; otherwise it is at most ``now - watermark``.
"""

from __future__ import annotations

import math
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from common.items import to_item

WATERMARK_KEY = {"pk": "uploads#recorded"}
# Waiting to be received, received (in a batch being gathered or handled, or failed and not yet back), delayed
COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class UploadsBacklog:
    def __init__(self, table: Any, sqs: Any, queue_url: str) -> None:
        self.table = table
        self.sqs = sqs
        self.queue_url = queue_url

    def recorded(self, sent_at: float) -> None:
        """Move the watermark forward to ``sent_at`` (a batch that ends after a newer one leaves it)."""
        try:
            self.table.update_item(
                Key=WATERMARK_KEY,
                UpdateExpression="SET sent_at = :sent_at",
                ConditionExpression=Attr("sent_at").not_exists() | Attr("sent_at").lt(to_item(sent_at)),
                ExpressionAttributeValues={":sent_at": to_item(sent_at)},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def age(self, now: float) -> float:
        """Seconds the oldest upload event still queued may have waited: 0 with the queue empty,
        ``math.inf`` if no batch was ever recorded."""
        counts = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=list(COUNTS))
        if not any(int(counts["Attributes"][name]) for name in COUNTS):
            return 0.0
        item = self.table.get_item(Key=WATERMARK_KEY, ConsistentRead=True).get("Item")
        if item is None:
            return math.inf
        return max(0.0, now - float(item["sent_at"]))
