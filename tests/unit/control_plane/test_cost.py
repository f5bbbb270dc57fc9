"""A run's cost: GetJobRun's billed hours times the deployment's prices (the published ones unless the
template sets its own), labelled an estimate off AWS."""

from __future__ import annotations

import pytest

from common.config import env_prices
from common.cost import run_cost
from common.errors import MissingConfigurationError
from common.plan import PRICES, InputSize, Prices, plan_run
from tests.unit.settings import JOB_SETTINGS

ENDED = {
    "state": "SUCCESS",
    "totalExecutionDurationSeconds": 1800,
    "billedResourceUtilization": {"vCPUHour": 8.0, "memoryGBHour": 32.0, "storageGBHour": 100.0},
}


def test_the_billed_hours_are_priced_at_the_architecture_s_published_prices() -> None:
    x86, arm = (run_cost(ENDED, PRICES[arch], arch, estimated=False) for arch in ("x86_64", "arm64"))

    assert x86 is not None and arm is not None
    assert x86["usd"] == pytest.approx(8 * 0.052624 + 32 * 0.0057785 + 100 * 0.000111)
    assert arm["usd"] < x86["usd"]
    assert (x86["vcpu_hours"], x86["memory_gb_hours"], x86["storage_gb_hours"]) == (8.0, 32.0, 100.0)
    assert (x86["duration_seconds"], x86["estimate"]) == (1800, False)
    assert (
        "billedResourceUtilization" in x86["basis"] and "aws.amazon.com/emr/pricing" in x86["prices_source"]
    )


def test_a_job_run_not_billed_yet_has_no_cost_and_an_emulated_one_is_an_estimate() -> None:
    assert run_cost({"state": "RUNNING"}, PRICES["x86_64"], "x86_64", estimated=False) is None
    emulated = run_cost(ENDED, PRICES["x86_64"], "x86_64", estimated=True)
    assert emulated is not None and emulated["estimate"] and "not a bill" in emulated["basis"]


def test_the_template_s_prices_replace_the_published_ones_and_bad_ones_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"PRICE_VCPU_HOUR": "0.04", "PRICE_GB_HOUR": "", "PRICE_STORAGE_GB_HOUR": ""}.items():
        monkeypatch.setenv(name, value)
    assert env_prices(PRICES["x86_64"]) == Prices(
        0.04, PRICES["x86_64"].gb_hour, PRICES["x86_64"].storage_gb_hour
    )

    monkeypatch.setenv("PRICE_GB_HOUR", "cheap")
    with pytest.raises(MissingConfigurationError, match=r"PRICE_GB_HOUR.*must be a price in USD"):
        env_prices(PRICES["x86_64"])


def test_the_cost_is_given_beside_the_plan_of_the_run_s_input() -> None:
    planned = plan_run(InputSize(10_000, 50_000_000), JOB_SETTINGS.limits, PRICES)

    cost = run_cost(ENDED, PRICES["arm64"], "arm64", estimated=False, planned=planned)

    assert cost is not None
    assert cost["planned_usd"] == round(planned.cost_usd["arm64"], 6) and cost["planned_hours"] > 0
