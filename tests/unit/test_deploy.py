"""packaging/deploy.py without AWS: prerequisites, worker sizes, content-addressed uploads."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.paths import ROOT
from tests.sam import sam_python

sys.path.insert(0, str(ROOT / "packaging"))  # as when it runs as a script: its own folder comes first
spec = importlib.util.spec_from_file_location("deploy", ROOT / "packaging" / "deploy.py")
deploy = sys.modules["deploy"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
spec.loader.exec_module(deploy)
# How sam deploy reads --parameter-overrides (samcli's own parser, in the SAM CLI's virtualenv).
SAM_READS = (
    "import json, sys; from samcli.cli.types import CfnParameterOverridesType; "
    "print(json.dumps(CfnParameterOverridesType().convert(sys.argv[1:], None, None)))"
)


def test_every_missing_prerequisite_is_named_before_anything_runs() -> None:
    with pytest.raises(deploy.PrerequisiteMissing) as error:
        deploy.check_prerequisites(sam=None, docker=None, credentials=None, region=None)

    message = str(error.value)
    assert "AWS SAM CLI" in message and "Docker" in message and "aws configure" in message
    assert "an AWS region" in message


def test_a_docker_client_without_an_engine_is_reported() -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match="running Docker engine"):
        deploy.check_prerequisites(
            sam="/usr/bin/sam", docker="/bin/false", credentials=object(), region="eu-west-1"
        )


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


@mock_aws
def test_an_artifacts_bucket_the_credentials_may_not_read_is_named_with_the_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3")
    entry = tmp_path / "main.py"
    entry.write_text("print('job')\n")
    with Stubber(s3) as stubbed:
        stubbed.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(deploy.PrerequisiteMissing, match="s3:GetObject, s3:PutObject and s3:ListBucket"):
            deploy.upload(s3, "artifacts", [deploy.Artifact("EntryPointKey", entry, "job")])


def test_arm64_with_tensorflow_is_refused_before_anything_is_built() -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match="no aarch64 wheel of tensorflow-cpu"):
        deploy.check_variants("ARM64", with_tensorflow=True)
    deploy.check_variants("ARM64", with_tensorflow=False)
    deploy.check_variants("X86_64", with_tensorflow=True)


def test_the_template_rules_state_the_worker_sizes_deploy_checks() -> None:
    from sizing import WORKER_MEMORY_GB

    from local.template import load_template

    rules = load_template()["Rules"]
    for role in ("Driver", "Executor"):
        for vcpu, sizes in WORKER_MEMORY_GB.items():
            rule = rules[f"{role}Worker{vcpu}vCpu"]
            assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": f"{role}Cores"}, str(vcpu)]}
            (assertion,) = rule["Assertions"]
            assert assertion["Assert"] == {
                "Fn::Contains": [[f"{g}g" for g in sizes], {"Ref": f"{role}WorkerMemory"}]
            }
    assert len(rules) == 2 * len(WORKER_MEMORY_GB)


def test_the_default_sizing_makes_valid_workers() -> None:
    deploy.check_sizing(deploy.parameter_values([]))


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (["DriverWorkerMemory=32g"], "DriverWorkerMemory must be 8g to 30g for a 4-vCPU worker"),
        (
            ["ExecutorCores=8", "ExecutorWorkerMemory=18g"],
            "must be 16g to 60g in steps of 4g for a 8-vCPU worker",
        ),
        (["ExecutorMemoryOverhead=8g"], "ExecutorMemoryOverhead 8g leaves the executor's JVM less than 1g"),
        (["ExecutorMemoryOverhead=3G"], "ExecutorMemoryOverhead must be a whole number of GB like 3g"),
    ],
)
def test_sizes_that_are_no_emr_worker_are_refused_before_anything_is_built(
    overrides: list[str], problem: str
) -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match="the workers' sizing is not valid") as refused:
        deploy.check_sizing(deploy.parameter_values(overrides))
    assert problem in str(refused.value)


def test_an_unknown_parameter_is_named_with_the_known_ones() -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match=r"Name one of .*ReleaseLabel, "):
        deploy.parameter_values(["DriverMemory=14g"])


@pytest.mark.parametrize(
    ("override", "option"),
    [("Architecture=ARM64", "--architecture"), ("ModelKey=models/x.onnx", "--weights")],
)
def test_a_parameter_the_deploy_sets_itself_is_refused_with_its_option(override: str, option: str) -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match=f"with {option}"):
        deploy.parameter_values([override])


@mock_aws
def test_the_sizing_checked_is_the_deployed_stack_s_with_the_overrides_on_top(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    cloudformation = boto3.client("cloudformation")
    assert deploy.deployed_parameters(cloudformation, "image-featurizer") == {}
    template = """{"Parameters": {"DriverWorkerMemory": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}"""
    cloudformation.create_stack(
        StackName="image-featurizer",
        TemplateBody=template,
        Parameters=[{"ParameterKey": "DriverWorkerMemory", "ParameterValue": "32g"}],
    )

    deployed = deploy.deployed_parameters(cloudformation, "image-featurizer")

    assert deployed == {"DriverWorkerMemory": "32g"}
    with pytest.raises(deploy.PrerequisiteMissing, match="DriverWorkerMemory must be 8g to 30g"):
        deploy.check_sizing(deploy.parameter_values([], deployed))
    deploy.check_sizing(deploy.parameter_values(["DriverWorkerMemory=16g"], deployed))


def test_sam_reads_the_overrides_as_given_an_empty_value_too() -> None:
    parameters = {"NotificationEmail": "a@b.io", "TensorflowEnvArchiveKey": "", "Label": "two words, a=b"}
    read = subprocess.run(
        [sam_python(), "-c", SAM_READS, *deploy.sam_overrides(parameters)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(read.stdout) == parameters


def test_a_value_sam_would_read_as_its_own_quoting_is_refused() -> None:
    with pytest.raises(deploy.PrerequisiteMissing, match="Label: a parameter value cannot hold a quote"):
        deploy.sam_overrides({"Label": 'say "hi"'})


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (["--int8-calibration", "photos"], "are for --with-int8"),
        (["--with-int8", "--int8-calibration", "photos", "--int8-validation", "photos/cats"], "overlap"),
    ],
)
def test_int8_folders_are_checked_before_any_prerequisite_or_build(
    arguments: list[str], refusal: str, tmp_path: Path
) -> None:
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    refused = subprocess.run(
        [sys.executable, ROOT / "packaging" / "deploy.py", "--email", "a@example.com", *arguments],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and refusal in refused.stderr, refused.stderr
    assert "AWS SAM CLI" not in refused.stderr, "named before the prerequisites are checked"
