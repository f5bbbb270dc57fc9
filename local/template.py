"""What the local stack takes from template.yaml: functions, their environment, rules and schedules.

The control-plane tests read template.yaml through the same functions, so the stack and the tests give the
handlers the same environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"

DATA_BUCKET = "featurizer-data"
ARTIFACTS_BUCKET = "featurizer-artifacts"
TABLE = "featurizer-state"
APPLICATION_ID = "00f1localstack01"  # EMR Serverless ids are 16 lowercase alphanumerics
JOB_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/featurizer-JobRuntimeRole"
UPLOADS_RULE = "InboxObjectCreatedRule"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags (!Ref, !GetAtt, !Sub...) into their long form."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    return loaded


def resolve(value: Any, template: dict[str, Any], resources: dict[str, str]) -> str:
    """A template value as a string: parameters take their Default, resources the names in ``resources``."""
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in template.get("Parameters", {}):
            return str(template["Parameters"][name]["Default"])
        return resources[name]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return resources[".".join(value["Fn::GetAtt"])]
    raise ValueError(f"cannot resolve template value {value!r}")


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_environment(
    template: dict[str, Any], function: str, resources: dict[str, str]
) -> dict[str, str]:
    """The environment variables template.yaml gives ``function`` (Globals, then the function's own)."""
    variables = dict(
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    own = functions(template)[function].get("Environment", {}).get("Variables", {})
    variables.update(own)
    return {name: resolve(value, template, resources) for name, value in variables.items()}


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout_seconds: int
    environment: dict[str, str]


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule: its pattern, and the function (or queue resource) it targets."""

    name: str
    pattern: dict[str, Any]
    target: str


def resolve_tree(value: Any, template: dict[str, Any], resources: dict[str, str]) -> Any:
    """``value`` with every !Ref / !GetAtt inside it replaced (event patterns nest them)."""
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        return resolve(value, template, resources)
    if isinstance(value, dict):
        return {key: resolve_tree(item, template, resources) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_tree(item, template, resources) for item in value]
    return value


class StackTemplate:
    """template.yaml with the local resources' names, and the parameter values the stack overrides."""

    def __init__(self, resources: dict[str, str], overrides: dict[str, str]) -> None:
        self.template = load_template()
        self.resources = resources
        self.overrides = overrides

    def resource(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.template["Resources"][name]
        return found

    def functions(self) -> list[FunctionSpec]:
        """Every function with its template environment; an override replaces a variable the function has."""
        timeout = self.template["Globals"]["Function"]["Timeout"]
        specs = []
        for name, props in functions(self.template).items():
            environment = function_environment(self.template, name, self.resources)
            environment |= {key: value for key, value in self.overrides.items() if key in environment}
            seconds = int(props.get("Timeout", timeout))
            specs.append(FunctionSpec(name, props["Handler"], seconds, environment))
        return specs

    def rules(self) -> list[RuleSpec]:
        """The inbox rule (to the uploads queue) and every function's EventBridgeRule event."""
        inbox = self.resource(UPLOADS_RULE)["Properties"]
        rules = [RuleSpec(UPLOADS_RULE, self._pattern(inbox["EventPattern"]), "UploadsQueue")]
        for name, props in functions(self.template).items():
            for event_name, event in props.get("Events", {}).items():
                if event["Type"] == "EventBridgeRule":
                    pattern = self._pattern(event["Properties"]["Pattern"])
                    rules.append(RuleSpec(f"{name}{event_name}", pattern, name))
        return rules

    def schedules(self) -> dict[str, str]:
        """Function name -> schedule expression, e.g. ``rate(1 minute)``."""
        return {
            name: event["Properties"]["Schedule"]
            for name, props in functions(self.template).items()
            for event in props.get("Events", {}).values()
            if event["Type"] == "Schedule"
        }

    def http_routes(self) -> list[str]:
        """Route keys of the HTTP API, e.g. ``POST /runs``, ``GET /runs/{run_id}``."""
        return [
            f"{event['Properties']['Method']} {event['Properties']['Path']}"
            for props in functions(self.template).values()
            for event in props.get("Events", {}).values()
            if event["Type"] == "HttpApi"
        ]

    def api_function(self) -> str:
        (name,) = {
            name
            for name, props in functions(self.template).items()
            for event in props.get("Events", {}).values()
            if event["Type"] == "HttpApi"
        }
        return name

    def parameter(self, name: str) -> str:
        return str(self.template["Parameters"][name]["Default"])

    def _pattern(self, pattern: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = resolve_tree(pattern, self.template, self.resources)
        return resolved


def resource_names(topic_arn: str, aws_endpoint: str) -> dict[str, str]:
    """The local resources template.yaml's references resolve to (moto names its queues' URLs by endpoint)."""
    return {
        "UploadsQueue": f"{aws_endpoint}/{ACCOUNT}/UploadsQueue",
        "StateTable": TABLE,
        "DataBucket": DATA_BUCKET,
        "ArtifactsBucket": ARTIFACTS_BUCKET,
        "EmrApplication": APPLICATION_ID,
        "JobRuntimeRole.Arn": JOB_ROLE_ARN,
        "RunReportsTopic": topic_arn,
    }
