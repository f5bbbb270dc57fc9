"""Real Spark in local mode, the real MobileNetV2 weights, the packed environment, the local S3 server."""
