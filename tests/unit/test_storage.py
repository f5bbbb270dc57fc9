"""A refusal from S3 is an error naming the missing permission, never "not there" (S3 answers 403 for a
missing key to a role that may not list the bucket)."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from featurizer import fetch, storage


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(storage, "s3_client", lambda: client)
    with Stubber(client) as stubbed:
        yield stubbed


def refuse(s3: Any, method: str) -> None:
    code = "403" if method == "head_object" else "AccessDenied"  # a HEAD's answer has no body, so no name
    s3.add_client_error(method, service_error_code=code, http_status_code=403)


def test_a_refused_head_is_access_denied_naming_get_and_list(s3: Any) -> None:
    refuse(s3, "head_object")

    with pytest.raises(storage.AccessDenied) as denied:
        storage.exists("s3://data/runs/ds/r1/_COMPLETED.json")

    assert "s3:GetObject" in str(denied.value) and "s3:ListBucket on bucket data" in str(denied.value)


def test_a_missing_key_is_not_there(s3: Any) -> None:
    s3.add_client_error("head_object", service_error_code="404", http_status_code=404)

    assert storage.exists("s3://data/runs/ds/r1/_COMPLETED.json") is False


def test_a_refused_listing_names_list_bucket(s3: Any) -> None:
    refuse(s3, "list_objects_v2")

    with pytest.raises(storage.AccessDenied, match="s3:ListBucket"):
        storage.folder_has_files("s3://data/inbox/ds/")


def test_an_image_the_workers_may_not_read_fails_the_task_instead_of_being_rejected(s3: Any) -> None:
    refuse(s3, "get_object")
    s3.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)

    with pytest.raises(storage.AccessDenied, match="s3:GetObject"):
        fetch.read("s3://data/inbox/ds/Banana/1.jpg")
    assert fetch.read("s3://data/inbox/ds/Banana/2.jpg") == fetch.GONE


class UnreadBody(io.BytesIO):
    """An S3 response body that records whether anyone read it."""

    read_from = False

    def read(self, *args: Any) -> bytes:
        self.read_from = True
        return super().read(*args)


def test_an_object_over_the_limit_is_refused_on_its_size_before_its_body_is_read(s3: Any) -> None:
    big, small = UnreadBody(bytes(33)), UnreadBody(bytes(32))
    for body in (big, small):
        s3.add_response("get_object", {"ContentLength": len(body.getvalue()), "Body": body})

    with pytest.raises(storage.TooLarge) as refused:
        storage.read_bytes("s3://data/inbox/ds/Banana/big.png", limit=32)
    assert refused.value.size == 33 and big.closed and not big.read_from
    assert storage.read_bytes("s3://data/inbox/ds/Banana/small.png", limit=32) == bytes(32)
