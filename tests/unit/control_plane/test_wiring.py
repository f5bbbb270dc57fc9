"""Every ``Handler:`` in template.yaml imports from its ``CodeUri`` with exactly the template's environment.

Each handler is imported in a fresh interpreter whose environment holds only the function's variables from
template.yaml (plus a region), so a variable the code reads but the template does not set fails the import,
as it would at cold start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.template import function_environment, functions, load_template
from tests.paths import ROOT

IMPORT = (
    "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
    "module, _, name = sys.argv[2].rpartition('.'); "
    "handler = getattr(importlib.import_module(module.replace('/', '.')), name); "
    "assert callable(handler), 'not callable'; print('ok', sys.argv[2])"
)


# What the Lambda runtime itself sets in every function's environment (the template may not set these).
LAMBDA_RUNTIME = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


class Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        if key.endswith(".Arn"):
            return f"arn:aws:iam::123456789012:role/placeholder-{key[:-4]}"
        return f"placeholder-{key.lower()}"


def code_uri(template: dict[str, Any], props: dict[str, Any]) -> Path:
    uri = props.get("CodeUri") or template["Globals"]["Function"]["CodeUri"]
    return (ROOT / uri).resolve()


def import_in_subprocess(
    template: dict[str, Any], name: str, drop: str | None = None
) -> subprocess.Popen[str]:
    props = functions(template)[name]
    variables = function_environment(template, name, Placeholders())
    if drop:
        variables.pop(drop)
    env = {"PATH": os.environ.get("PATH", ""), **LAMBDA_RUNTIME, **variables}
    return subprocess.Popen(
        [sys.executable, "-c", IMPORT, str(code_uri(template, props)), props["Handler"]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_every_handler_imports_from_its_code_uri_with_the_template_environment() -> None:
    template = load_template()
    names = sorted(functions(template))
    assert names == [
        "ApiFunction",
        "NotifyFunction",
        "ReconcileFunction",
        "RunEndedFunction",
        "SweepFunction",
        "UploadsFunction",
    ]
    running = {name: import_in_subprocess(template, name) for name in names}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name}: {err}"
        assert out.startswith("ok "), name


def test_every_variable_the_code_reads_is_set_by_the_template() -> None:
    template = load_template()
    read = set()
    for path in (ROOT / "lambda").rglob("*.py"):
        read |= set(re.findall(r"""\benv(?:_[a-z]+)?\(\s*["']([A-Z0-9_]+)["']""", path.read_text()))
        assert "os.getenv" not in path.read_text(), f"{path}: configuration must fail loudly when missing"
    assert len(read) >= 15
    for name in functions(template):
        missing = read - set(function_environment(template, name, Placeholders())) - set(LAMBDA_RUNTIME)
        assert not missing, f"{name} lacks {sorted(missing)}"


@pytest.mark.parametrize("variable", ["EMR_APPLICATION_ID", "STATE_TABLE", "TOPIC_ARN"])
def test_a_missing_variable_fails_the_cold_start_naming_it(variable: str) -> None:
    process = import_in_subprocess(load_template(), "NotifyFunction", drop=variable)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert f"MissingConfigurationError: environment variable {variable} is not set" in err
