"""The control plane's plan module (lambda/common/plan.py), loaded from the checkout the featurizer is
installed from: the CLI prices and sizes runs with the very code that sizes their start requests.

Loaded by its path under a name of its own, so that lambda/'s top-level packages (`common`, `api`, ...)
stay off the job's import path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PLAN = Path(__file__).resolve().parents[2] / "lambda" / "common" / "plan.py"
MODULE = "featurizer._control_plane_plan"


class ControlPlaneMissing(FileNotFoundError):
    """The featurizer is not installed from a checkout of the repository (no lambda/ beside spark/)."""


def control_plane_plan() -> ModuleType:
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    if not PLAN.is_file():
        raise ControlPlaneMissing(
            f"{PLAN} is not there: plans and prices come from the control plane's lambda/common/plan.py, so "
            "run this from a checkout of the repository (`pip install -e .` in it)"
        )
    spec = importlib.util.spec_from_file_location(MODULE, PLAN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module
