"""packaging/selftest.py against the running local stack: PASS, and a one-line cause for each FAIL."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from local.iam import POLICY_FILE, read_policy, write_policy
from local.template import ARTIFACTS_BUCKET, DATA_BUCKET
from tests.e2e.stack import RunningStack
from tests.paths import ROOT

MODEL_KEY = "models/featurizer-model.onnx"  # the template's default ModelKey, where the local stack puts it


def self_test(stack: RunningStack) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, ROOT / "packaging" / "selftest.py", "--local", "--state-dir", stack.state_dir],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = result.stdout.splitlines()
    verdicts = [line for line in lines if line.startswith(("PASS: ", "FAIL: "))]
    assert len(verdicts) == 1, result.stdout + result.stderr
    return result.returncode, lines[lines.index(verdicts[0]) :]


def test_a_healthy_stack_passes_with_the_workers_environment_region_and_role(stack: RunningStack) -> None:
    status, verdict = self_test(stack)

    assert status == 0, "\n".join(verdict)
    assert verdict[0].startswith("PASS: self-test run selftest-")
    assert "21 images featurized, 4 broken ones rejected" in verdict[0]
    details = "\n".join(verdict[1:])
    assert "Python 3.11." in details and "/environment/bin/python" in details and "numpy 1.26.4" in details
    assert "region: us-east-1" in details
    assert "refused to write into the input, write into the artifacts" in details
    assert "model: sha256 " in details and "as its .sha256 file says" in details
    assert "report: http" in details
    dataset = re.search(r"self-test run (selftest-\d{8}T\d{6})", verdict[0]).group(1)
    left = stack.client("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"inbox/{dataset}/")
    assert left["KeyCount"] == 0  # a passed self-test removes its input


@contextmanager
def replaced(stack: RunningStack, key: str, body: bytes) -> Iterator[None]:
    s3 = stack.client("s3")
    kept = s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=body)
    try:
        yield
    finally:
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=kept)


def test_a_model_whose_sha256_is_wrong_fails_with_both_digests(stack: RunningStack) -> None:
    with replaced(stack, f"{MODEL_KEY}.sha256", b"0" * 64 + b"  featurizer-model.onnx\n"):
        status, verdict = self_test(stack)

    assert status == 1
    assert any(
        line.startswith(f"  input (kept to look into): s3://{DATA_BUCKET}/inbox/selftest-")
        for line in verdict
    )
    assert verdict[0].startswith(f"FAIL: --model s3://{ARTIFACTS_BUCKET}/{MODEL_KEY} has sha256 ")
    assert verdict[0].endswith("but its .sha256 file says " + "0" * 64)


def test_a_job_role_that_may_not_write_its_runs_fails_naming_the_permission(stack: RunningStack) -> None:
    policy = stack.state_dir / POLICY_FILE
    kept = read_policy(policy)
    write_policy(policy, [statement for statement in kept if statement.sid != "WriteRunOutputs"])
    try:
        status, verdict = self_test(stack)
    finally:
        write_policy(policy, kept)

    assert status == 1
    assert verdict[0].startswith(
        "FAIL: the job's role could not write the run's folder: s3://featurizer-data/runs/"
    )
    assert "the job's role needs s3:PutObject there" in verdict[0]
