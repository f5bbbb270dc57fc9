"""packaging/deploy.py: what can run without AWS: prerequisites and content-addressed uploads."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT

spec = importlib.util.spec_from_file_location("deploy", ROOT / "packaging" / "deploy.py")
deploy = sys.modules["deploy"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
spec.loader.exec_module(deploy)


def test_every_missing_prerequisite_is_named_before_anything_runs() -> None:
    with pytest.raises(deploy.PrerequisiteMissing) as error:
        deploy.check_prerequisites(sam=None, docker=None, credentials=None)

    message = str(error.value)
    assert "AWS SAM CLI" in message and "Docker" in message and "aws configure" in message


def test_a_docker_client_without_an_engine_is_reported() -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match="running Docker engine"):
        deploy.check_prerequisites(sam="/usr/bin/sam", docker="/bin/false", credentials=object())


@mock_aws
def test_uploads_are_content_addressed_and_never_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model v1")
    checksum = tmp_path / "model.onnx.sha256"
    checksum.write_text("abc  model.onnx\n")
    entry = tmp_path / "main.py"
    entry.write_text("print('job')\n")
    artifacts = [
        deploy.Artifact("EntryPointKey", entry, "job"),
        deploy.Artifact("ModelKey", model, "models", checksum=checksum),
    ]

    first = deploy.upload(s3, "artifacts", artifacts)
    model.write_bytes(b"model v2")
    second = deploy.upload(s3, "artifacts", artifacts)

    assert first["EntryPointKey"] == second["EntryPointKey"]
    assert first["ModelKey"] != second["ModelKey"] and first["ModelKey"].startswith("models/")
    assert s3.get_object(Bucket="artifacts", Key=first["ModelKey"])["Body"].read() == b"model v1"
    assert (
        s3.get_object(Bucket="artifacts", Key=first["ModelKey"] + ".sha256")["Body"].read()
        == checksum.read_bytes()
    )
