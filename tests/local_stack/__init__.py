"""The local stack's own tests: its stand-ins for AWS in local/ (EMR, events, HTTP API), not the product."""
