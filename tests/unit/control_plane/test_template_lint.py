"""template.yaml under the field's linters: checkov on the template, parliament on every IAM statement of the
SAM-transformed template (and the dead-letter rules only the transformed template shows).

checkov and parliament pin packages the job cannot share, so they live in .venv-lint
(tests/requirements-lint.txt, `make lint-tools`); the tests find its bin/ through $LINT_TOOLS, as tests/sam.py
finds sam. The SAM transform runs in the SAM CLI's own interpreter (samtranslator), with no managed-policy
look-up: nothing needs the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ROOT
from tests.sam import sam_python

TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "featurizer"


def lint_tool(name: str) -> str:
    """A program of the linters' virtualenv: $LINT_TOOLS/<name>, else .venv-lint/bin, beside this
    interpreter or on PATH."""
    for folder in (os.environ.get("LINT_TOOLS"), ROOT / ".venv-lint" / "bin", Path(sys.executable).parent):
        if folder and (Path(folder) / name).exists():
            return str(Path(folder) / name)
    found = shutil.which(name)
    if found and name != "python":
        return found
    pytest.fail(
        f"{name} of the template linters is not installed: `make lint-tools` (python3.11 -m venv .venv-lint "
        "&& .venv-lint/bin/pip install -r tests/requirements-lint.txt), then set LINT_TOOLS=.venv-lint/bin"
    )


# ------------------------------------------------------------------ checkov


def test_checkov_passes_every_check_or_skips_it_in_the_template_with_a_reason() -> None:
    result = subprocess.run(
        [
            lint_tool("checkov"),
            *("--file", str(TEMPLATE), "--framework", "cloudformation", "--output", "json"),
            "--compact",
            "--skip-download",  # no Prisma Cloud look-ups (guidelines, severities): offline
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    report = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert report["summary"]["resource_count"] > 40
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]
    ]
    assert not failed, (
        "checkov: fix each, or skip it on the resource (Metadata: checkov: skip) with the reason:\n"
        + ("\n".join(failed))
    )
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in report["results"]["skipped_checks"]
        if c["check_result"]["suppress_comment"] in ("", "No comment provided")
    ]
    assert not unexplained, f"skipped without a comment: {unexplained}"
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------ the transformed template

TRANSFORM = """
import json, sys
sys.path.insert(0, sys.argv[1])
from local.template import load_template
from samtranslator.translator.transform import transform

class NoManagedPolicyLookUp:
    def load(self):
        raise SystemExit("an AWS managed policy named by name: write its ARN (no IAM look-up here)")

template = load_template()
for function in [template["Globals"]["Function"], *template["Resources"].values()]:
    props = function.get("Properties", function)
    if "CodeUri" in props:
        props["CodeUri"] = "s3://packaged/lambda.zip"  # what sam package puts there
print(json.dumps(transform(template, {}, NoManagedPolicyLookUp())))
"""


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    """template.yaml as CloudFormation deploys it, after the AWS::Serverless-2016-10-31 transform."""
    result = subprocess.run(
        [sam_python(), "-c", TRANSFORM, str(ROOT)],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION},
        cwd=ROOT,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


ARN_OF_TYPE = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{lower}",
    "AWS::EMRServerless::Application": "arn:aws:emr-serverless:{region}:{account}:/applications/00f1app",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
}
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws", "AWS::StackName": STACK}


def arn(template: dict[str, Any], name: str) -> str:
    kind = template["Resources"][name]["Type"]
    return ARN_OF_TYPE[kind].format(region=REGION, account=ACCOUNT, name=name, lower=name.lower())


def ref(template: dict[str, Any], name: str) -> str:
    """What !Ref gives, in the forms IAM sees: an ARN for a topic, a URL for a queue, a name otherwise."""
    if name in PSEUDO:
        return PSEUDO[name]
    if name in template.get("Parameters", {}):
        return str(template["Parameters"][name].get("Default", ""))
    kind = template["Resources"][name]["Type"]
    if kind == "AWS::SNS::Topic":
        return arn(template, name)
    if kind == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return name.lower() if kind == "AWS::S3::Bucket" else name


def get_att(template: dict[str, Any], name: str, attribute: str) -> str:
    if attribute == "Arn":
        return arn(template, name)
    if attribute in ("QueueName", "TopicName"):
        return name
    raise ValueError(f"no rendering of {name}.{attribute}")


def render(value: Any, template: dict[str, Any]) -> Any:
    """``value`` with its intrinsic functions replaced by plausible values (ARNs of the right form)."""
    if isinstance(value, list):
        return [render(item, template) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return ref(template, argument)
        if function == "Fn::GetAtt":
            name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return get_att(template, name, attribute)
        if function == "Fn::Sub":
            text, names = (argument, {}) if isinstance(argument, str) else argument

            def variable(match: re.Match[str]) -> str:
                key = match.group(1)
                if key in names:
                    return str(render(names[key], template))
                return get_att(template, *key.split(".", 1)) if "." in key else ref(template, key)

            return re.sub(r"\$\{([^}!]+)\}", variable, text)
        if function == "Fn::Join":
            return argument[0].join(str(render(item, template)) for item in argument[1])
        if function == "Fn::If":
            return render(argument[1], template)
    return {key: render(item, template) for key, item in value.items()}


@dataclass(frozen=True)
class Located:
    resource: str
    document: str  # AssumeRolePolicyDocument, PolicyDocument, KeyPolicy or the role policy's name
    statement: dict[str, Any]


def every_statement(template: dict[str, Any]) -> Iterator[Located]:
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("AssumeRolePolicyDocument", "PolicyDocument", "KeyPolicy"):
            if key in props:
                for statement in props[key]["Statement"]:
                    yield Located(name, key, statement)
        for policy in props.get("Policies", []):
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield Located(name, policy["PolicyName"], statement)


# ------------------------------------------------------------------ parliament

PARLIAMENT = """
import json, sys
import parliament
findings = []
for index, statement in enumerate(json.load(sys.stdin)):
    policy = parliament.analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    for finding in policy.findings:
        findings.append({"index": index, "issue": finding.issue, "severity": finding.severity,
                         "detail": str(finding.detail)})
print(json.dumps(findings))
"""


def parliament_findings(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [lint_tool("python"), "-c", PARLIAMENT],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


@dataclass(frozen=True)
class Accepted:
    """A parliament finding that is no problem here, and why."""

    issue: str
    reason: str
    document: str | None = None  # only in documents of this kind
    detail: str | None = None  # only findings whose detail contains this

    def covers(self, finding: dict[str, Any], where: Located) -> bool:
        return (
            finding["issue"] == self.issue
            and self.document in (None, where.document)
            and (self.detail is None or self.detail in finding["detail"])
        )


# Every finding parliament reports fails the test, of any severity (an unknown action is LOW and a real typo),
# except these false positives.
ACCEPTED = [
    Accepted(
        "MALFORMED",
        "a trust policy names no Resource: the role it is attached to is the resource",
        document="AssumeRolePolicyDocument",
        detail="neither Resource nor NotResource",
    ),
    Accepted("RESOURCE_STAR", 'in a key policy, Resource "*" is the key itself', document="KeyPolicy"),
    Accepted(
        "UNKNOWN_ACTION",
        "SAM's SQSPollerPolicy lists sqs:ChangeMessageVisibilityBatch, which IAM does not have (the batch "
        "call is authorized by sqs:ChangeMessageVisibility, also listed); harmless",
        detail="sqs:ChangeMessageVisibilityBatch",
    ),
    Accepted(
        "UNKNOWN_ACTION",
        "SAM's SQSPollerPolicy lists sqs:DeleteMessageBatch, which IAM does not have (the batch call is "
        "authorized by sqs:DeleteMessage, also listed); harmless",
        detail="sqs:DeleteMessageBatch",
    ),
]


def test_parliament_finds_nothing_in_any_statement_of_the_transformed_template(
    transformed: dict[str, Any],
) -> None:
    located = list(every_statement(transformed))
    assert len(located) > 50  # every role (SAM's included), bucket, queue and key policy
    findings = parliament_findings([render(where.statement, transformed) for where in located])
    used: set[int] = set()
    problems = []
    for finding in findings:
        where = located[finding["index"]]
        accepted = [i for i, rule in enumerate(ACCEPTED) if rule.covers(finding, where)]
        used.update(accepted)
        if not accepted:
            sid = where.statement.get("Sid", "(no Sid)")
            problems.append(
                f"{where.resource} {where.document} {sid}: {finding['issue']} ({finding['severity']}) "
                f"{finding['detail']}"
            )
    assert not problems, "parliament:\n" + "\n".join(problems)
    stale = [ACCEPTED[i].reason for i in range(len(ACCEPTED)) if i not in used]
    assert not stale, f"accepted findings parliament no longer reports (remove them): {stale}"


def test_parliament_as_run_here_does_report_a_bad_statement() -> None:
    """The renderer and the subprocess can fail the test above: a mistyped action and a resource of the wrong
    service are reported."""
    bad = [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:s3:::featurizer-data/*"},
        {"Effect": "Allow", "Action": "emr-serverless:StartJobRuns", "Resource": "*"},
    ]
    issues = {(f["index"], f["issue"]) for f in parliament_findings(bad)}
    assert (0, "RESOURCE_MISMATCH") in issues
    assert (1, "UNKNOWN_ACTION") in issues


# ------------------------------------------------------------------ dead letters (transformed template)


def sends_dead_letters_to(target: dict[str, Any]) -> Any:
    return target.get("DeadLetterConfig", {}).get("Arn")


def test_the_events_dead_letter_queue_admits_exactly_this_stacks_rules(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    events_dlq = {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    rules = {
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Events::Rule"
        and any(sends_dead_letters_to(t) == events_dlq for t in resource["Properties"]["Targets"])
    }
    assert len(rules) >= 5
    (statement,) = resources["EventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    admitted = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(admitted, key=str) == sorted(({"Fn::GetAtt": [r, "Arn"]} for r in rules), key=str)


def test_every_function_with_a_dead_letter_queue_may_send_to_it(transformed: dict[str, Any]) -> None:
    """Lambda sends an asynchronous invocation's dead letter with the function's role, not as EventBridge."""
    resources = transformed["Resources"]
    functions = {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Function" and "DeadLetterConfig" in resource["Properties"]
    }
    assert len(functions) >= 4
    for name, props in functions.items():
        role = props["Role"]["Fn::GetAtt"][0]
        target = props["DeadLetterConfig"]["TargetArn"]
        grants = [
            located.statement
            for located in every_statement({"Resources": {role: resources[role]}})
            if located.statement["Effect"] == "Allow" and "sqs:SendMessage" in actions(located.statement)
        ]
        assert any(grant["Resource"] == target for grant in grants), f"{name} cannot send to {target}"


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]
