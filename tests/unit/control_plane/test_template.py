"""template.yaml: the linters pass, and the IAM and wiring rules of the issue hold."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from tests.paths import ROOT
from tests.sam import sam_command

TEMPLATE = ROOT / "template.yaml"
LINT_ENV = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        env=LINT_ENV,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    result = subprocess.run(
        [*sam_command(), "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env={**LINT_ENV, "SAM_CLI_TELEMETRY": "0"},
        cwd=ROOT,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement written in the template (roles, function policies, resource policies)."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [
            policy["PolicyDocument"] for policy in props.get("Policies", []) if "PolicyDocument" in policy
        ]
        documents += [policy for policy in props.get("Policies", []) if "Statement" in policy]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        if "AssumeRolePolicyDocument" in props:
            documents.append(props["AssumeRolePolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_allow_statement_has_a_wildcard_action_or_resource(local_aws: Any) -> None:
    found = list(statements(local_aws.template))
    assert len(found) > 30
    for name, statement in found:
        if statement["Effect"] == "Deny":
            continue  # TLS-only bucket policies deny s3:* over plain HTTP; a Deny grants nothing
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"
        for resource in as_list(statement.get("Resource", [])):
            assert resource != "*", f"{name}: Resource '*'"


def test_every_bucket_is_versioned_encrypted_private_and_tls_only(local_aws: Any) -> None:
    resources = local_aws.template["Resources"]
    buckets = [name for name, r in resources.items() if r["Type"] == "AWS::S3::Bucket"]
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]["Statement"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    assert buckets
    for bucket in buckets:
        props = resources[bucket]["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, bucket
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], bucket
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}, bucket
        assert any(
            s["Effect"] == "Deny"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Resource"] == [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Sub": f"${{{bucket}.Arn}}/*"}]
            for s in policies.get(bucket, [])
        ), f"{bucket} has no TLS-only policy over the bucket and its objects"


def test_every_rule_and_async_function_has_a_dead_letter_queue(local_aws: Any) -> None:
    resources = local_aws.template["Resources"]
    for target in resources["InboxObjectCreatedRule"]["Properties"]["Targets"]:
        assert "DeadLetterConfig" in target
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] in ("EventBridgeRule", "Schedule"):
                assert "DeadLetterConfig" in event["Properties"], f"{name}.{event_name}"
                assert "DeadLetterQueue" in resource["Properties"], name


def test_every_route_of_the_api_is_signed_with_iam(local_aws: Any) -> None:
    resources = local_aws.template["Resources"]
    apis = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::HttpApi"}
    routes = [
        event["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
        for event in r["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    ]
    assert len(routes) == 3
    for api in apis:
        assert resources[api]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    for route in routes:
        assert route["ApiId"]["Ref"] in apis, route
        assert "Auth" not in route, f"{route['Method']} {route['Path']} overrides the IAM authorizer"


def test_the_emr_end_rules_match_exactly_the_states_the_handlers_treat_as_ended(local_aws: Any) -> None:
    from common.models import TERMINAL_STATES
    from local.jobs import TERMINAL

    patterns = [
        event["Properties"]["Pattern"]
        for r in local_aws.template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
        for event in r["Properties"].get("Events", {}).values()
        if event["Type"] == "EventBridgeRule"
        and "aws.emr-serverless" in event["Properties"]["Pattern"]["source"]
    ]
    assert len(patterns) == 2  # RunEndedFunction and NotifyFunction
    for pattern in patterns:
        assert set(pattern["detail"]["state"]) == TERMINAL_STATES == TERMINAL


def test_the_tests_run_the_spark_of_the_default_release_and_only_mapped_releases_are_allowed(
    local_aws: Any,
) -> None:
    import pyspark

    release = local_aws.template["Parameters"]["ReleaseLabel"]
    spark_of = local_aws.template["Mappings"]["ReleaseSpark"]
    assert set(release["AllowedValues"]) == set(spark_of)
    assert str(spark_of[release["Default"]]["Spark"]) == pyspark.__version__, (
        "pin pyspark (pyproject.toml, constraints.txt) to the Spark of the default ReleaseLabel"
    )
