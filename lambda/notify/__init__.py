"""Notify: a readable SNS message for every finished run, success or failure."""
