"""Where the tests find the SAM CLI, which lives in a virtualenv of its own."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def sam_command() -> list[str]:
    """The SAM CLI: $SAM_CLI, else `sam` on PATH or beside this interpreter, else `python -m samcli`.

    aws-sam-cli pins an older boto3 than the job, so it usually lives in a virtualenv of its own
    (packaging/requirements-sam.txt); point SAM_CLI at that venv's bin/sam.
    """
    if os.environ.get("SAM_CLI"):
        return [os.environ["SAM_CLI"]]
    beside = Path(sys.executable).parent / "sam"
    if beside.exists():
        return [str(beside)]
    on_path = shutil.which("sam")
    if on_path:
        return [on_path]
    try:
        import samcli  # noqa: F401
    except ImportError:
        pytest.fail(
            "the SAM CLI is not installed: `python3 -m venv /opt/sam && /opt/sam/bin/pip install -r "
            "packaging/requirements-sam.txt`, then set SAM_CLI=/opt/sam/bin/sam"
        )
    return [sys.executable, "-m", "samcli"]


def sam_python() -> str:
    """The interpreter that runs the SAM CLI (its script's shebang), to call samcli's own code."""
    command = sam_command()
    if command[0] == sys.executable:
        return sys.executable
    return Path(command[0]).read_text().splitlines()[0].removeprefix("#!").strip()
