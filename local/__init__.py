"""The whole service on one machine, no AWS account: ``python -m local demo|stack`` (docs/local-stack.md).

moto serves S3, SQS, SNS, DynamoDB and EventBridge; ``local.emr`` speaks the EMR Serverless API and runs each
job with spark-submit; the Lambda handlers run unchanged in their own processes, fed the events AWS sends.
"""
