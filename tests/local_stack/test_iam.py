"""The local S3 holds the job's requests to the job runtime role's S3 statements in template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.aws import EnforcingMotoServer
from local.iam import JOB_CREDENTIALS, POLICY_FILE, job_role_statements, read_policy, write_policy
from local.template import ARTIFACTS_BUCKET, DATA_BUCKET, REGION
from tests.ports import free_port

BUCKETS = {"DataBucket": DATA_BUCKET, "ArtifactsBucket": ARTIFACTS_BUCKET}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A client as the job (its role's key) and one as anyone else, on an enforcing local S3."""
    policy = tmp_path_factory.mktemp("state") / POLICY_FILE
    write_policy(policy, job_role_statements(BUCKETS))
    port = free_port()
    server = EnforcingMotoServer("127.0.0.1", port, policy)
    server.start()

    def client(key: str) -> Any:
        return boto3.client(
            "s3", region_name=REGION, endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=key, aws_secret_access_key=key,
        )  # fmt: skip

    anyone = client("testing")
    for bucket in BUCKETS.values():
        anyone.create_bucket(Bucket=bucket)
    anyone.put_object(Bucket=DATA_BUCKET, Key="inbox/ds/Banana/1.jpg", Body=b"jpeg")
    yield {"job": client(JOB_CREDENTIALS["AWS_ACCESS_KEY_ID"]), "anyone": anyone, "policy": policy}
    server.stop()


def refused(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("AccessDenied", "403"), error
        return True
    return False


def test_the_job_may_list_and_read_the_input_and_write_its_runs(s3: dict[str, Any]) -> None:
    job = s3["job"]
    assert job.list_objects_v2(Bucket=DATA_BUCKET, Prefix="inbox/ds/")["KeyCount"] == 1
    assert job.get_object(Bucket=DATA_BUCKET, Key="inbox/ds/Banana/1.jpg")["Body"].read() == b"jpeg"
    job.put_object(Bucket=DATA_BUCKET, Key="runs/ds/r1/_COMPLETED.json", Body=b"{}")
    job.delete_objects(Bucket=DATA_BUCKET, Delete={"Objects": [{"Key": "runs/ds/r1/_COMPLETED.json"}]})
    with pytest.raises(ClientError, match="404"):  # it may list: a missing key is a 404, not a 403
        job.head_object(Bucket=DATA_BUCKET, Key="runs/ds/r1/_COMPLETED.json")


def test_the_job_is_refused_what_its_role_does_not_grant_and_others_are_not(s3: dict[str, Any]) -> None:
    job, anyone = s3["job"], s3["anyone"]
    assert refused(job.put_object, Bucket=DATA_BUCKET, Key="inbox/ds/_probe/", Body=b"")
    assert refused(job.put_object, Bucket=ARTIFACTS_BUCKET, Key="models/_probe/", Body=b"")
    keys = [{"Key": "inbox/ds/Banana/1.jpg"}, {"Key": "runs/ds/r9/x"}]
    batch = job.delete_objects(Bucket=DATA_BUCKET, Delete={"Objects": keys})
    assert [(e["Key"], e["Code"]) for e in batch["Errors"]] == [("inbox/ds/Banana/1.jpg", "AccessDenied")]
    assert [d["Key"] for d in batch["Deleted"]] == ["runs/ds/r9/x"]  # S3 refuses a batch key by key
    assert anyone.head_object(Bucket=DATA_BUCKET, Key="inbox/ds/Banana/1.jpg")
    assert refused(job.head_object, Bucket=DATA_BUCKET, Key="logs/x")
    assert not refused(anyone.put_object, Bucket=DATA_BUCKET, Key="inbox/ds/_probe/", Body=b"")


def test_a_permission_taken_from_the_policy_file_is_refused_at_once(s3: dict[str, Any]) -> None:
    policy: Path = s3["policy"]
    kept = read_policy(policy)
    write_policy(policy, [s for s in kept if s.sid != "WriteRunOutputs"])
    try:
        assert refused(s3["job"].put_object, Bucket=DATA_BUCKET, Key="runs/ds/r2/x", Body=b"")
    finally:
        write_policy(policy, kept)
    assert not refused(s3["job"].put_object, Bucket=DATA_BUCKET, Key="runs/ds/r2/x", Body=b"")


def test_a_policy_edited_by_hand_is_read_as_iam_reads_it_and_a_broken_one_is_named(
    s3: dict[str, Any],
) -> None:
    policy: Path = s3["policy"]
    kept = policy.read_text()
    try:
        policy.write_text(f'[{{"Action": "s3:GetObject", "Resource": "arn:aws:s3:::{DATA_BUCKET}/inbox/*"}}]')
        assert not refused(s3["job"].get_object, Bucket=DATA_BUCKET, Key="inbox/ds/Banana/1.jpg")
        assert refused(s3["job"].get_object, Bucket=DATA_BUCKET, Key="runs/ds/r2/x")  # not `*` alone

        policy.write_text('[{"Action": "s3:GetObject"}]')
        with pytest.raises(ClientError, match=r"the job role's policy cannot be read: .*'Resource'"):
            s3["job"].get_object(Bucket=DATA_BUCKET, Key="inbox/ds/Banana/1.jpg")
    finally:
        policy.write_text(kept)
    assert not refused(s3["job"].put_object, Bucket=DATA_BUCKET, Key="runs/ds/r2/x", Body=b"")
