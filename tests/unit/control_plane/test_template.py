"""template.yaml: the linters pass, and the IAM and wiring rules of the issue hold."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from local.template import functions
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
    assert len(routes) == 4
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


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == kind}


def test_every_alarm_notifies_the_operations_topic_never_the_run_reports_topic(local_aws: Any) -> None:
    alarms = resources_of_type(local_aws.template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 19
    for name, props in alarms.items():
        assert props["AlarmActions"] == [{"Ref": "OperationsTopic"}], name
        assert props["OKActions"] == [{"Ref": "OperationsTopic"}], name
        assert "InsufficientDataActions" not in props, name
        assert props["TreatMissingData"] == "notBreaching", name  # sparse metrics: no data is no failure


def test_every_function_has_an_errors_and_a_throttles_alarm(local_aws: Any) -> None:
    watched = {
        (props["Dimensions"][0]["Value"]["Ref"], props["MetricName"])
        for props in resources_of_type(local_aws.template, "AWS::CloudWatch::Alarm").values()
        if props["Namespace"] == "AWS/Lambda"
    }
    expected = {
        (name, metric) for name in functions(local_aws.template) for metric in ("Errors", "Throttles")
    }
    assert watched == expected


def test_the_alarms_on_the_functions_metrics_watch_what_powertools_emits(local_aws: Any) -> None:
    """Namespace and the one default dimension (service) as Globals give Powertools, and a metric name that a
    function does emit."""
    variables = local_aws.template["Globals"]["Function"]["Environment"]["Variables"]
    sources = "\n".join(path.read_text() for path in (ROOT / "lambda").rglob("*.py"))
    own = {
        name: props
        for name, props in resources_of_type(local_aws.template, "AWS::CloudWatch::Alarm").items()
        if not props["Namespace"].startswith("AWS/")
    }
    assert {props["MetricName"] for props in own.values()} == {
        "SweepErrors",
        "ReconcileErrors",
        "RunsFailedToStart",
    }
    for name, props in own.items():
        assert props["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"], name
        assert props["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}], (
            name
        )
        assert f'add_metric(name="{props["MetricName"]}"' in sources, f"{name}: no function emits the metric"


def test_the_topics_and_log_groups_are_encrypted_with_the_stack_key_and_logs_are_kept_for_a_while(
    local_aws: Any,
) -> None:
    template = local_aws.template
    key = {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
    assert template["Resources"]["EncryptionKey"]["Properties"]["EnableKeyRotation"] is True
    topics = resources_of_type(template, "AWS::SNS::Topic")
    assert set(topics) == {"RunReportsTopic", "OperationsTopic"}
    for name, props in topics.items():
        assert props["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}, name
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    for name, props in groups.items():
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert props["KmsKeyId"] == key, name
    for name, props in functions(template).items():
        assert props["LoggingConfig"]["LogGroup"]["Ref"] in groups, f"{name} logs to a group of no retention"


def test_cloudwatch_logs_may_use_the_key_for_every_log_group_of_the_stack(local_aws: Any) -> None:
    """A log group the key policy does not cover fails to create (AccessDenied from KMS)."""
    template = local_aws.template
    statements = template["Resources"]["EncryptionKey"]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s["Sid"] == "LogsEncryptThisStacksLogGroups"]
    stack = {
        "${AWS::Partition}": "aws",
        "${AWS::Region}": "r",
        "${AWS::AccountId}": "1",
        "${AWS::StackName}": "s",
    }

    def substituted(text: str) -> str:
        for variable, value in stack.items():
            text = text.replace(variable, value)
        return text

    patterns = [
        substituted(p["Fn::Sub"])
        for p in logs["Condition"]["StringLike"]["kms:EncryptionContext:aws:logs:arn"]
    ]
    for name, props in resources_of_type(template, "AWS::Logs::LogGroup").items():
        # a group without a name gets <stack>-<logical id>-<suffix> from CloudFormation
        group = substituted(props["LogGroupName"]["Fn::Sub"]) if "LogGroupName" in props else f"s-{name}-A1B2"
        arn = f"arn:aws:logs:r:1:log-group:{group}"
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns), f"{name}: {arn}"


def test_every_function_that_publishes_run_reports_may_use_the_topic_key(local_aws: Any) -> None:
    for name, props in functions(local_aws.template).items():
        policies = props.get("Policies", [])
        if not any("SNSPublishMessagePolicy" in policy for policy in policies):
            continue
        grants = [
            s
            for _, s in statements({"Resources": {name: {"Properties": props}}})
            if s.get("Sid") == "PublishEncrypted"
        ]
        assert grants == [
            {
                "Sid": "PublishEncrypted",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": {"Fn::GetAtt": ["EncryptionKey", "Arn"]},
            }
        ], name


def test_the_state_table_survives_a_deleted_or_replaced_stack(local_aws: Any) -> None:
    table = local_aws.template["Resources"]["StateTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["DeletionProtectionEnabled"] is True


def test_the_runs_index_projects_what_get_runs_lists(local_aws: Any) -> None:
    """GET /runs reads only runs-index: each attribute it lists, or reads for the state, is projected."""
    from common.records import LISTED, PAGE_KEYS, RUNS_INDEX

    table = local_aws.template["Resources"]["StateTable"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == RUNS_INDEX]
    assert index["Projection"]["NonKeyAttributes"] == [*LISTED, "job_run_id", "start_error"]
    keys = [k["AttributeName"] for k in table["KeySchema"] + index["KeySchema"]]
    assert tuple(keys) == PAGE_KEYS
