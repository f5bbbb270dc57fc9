"""`featurizer plan`: the control plane's plan of runs of N images, printed for x86_64 and arm64, with the
limits of template.yaml by default and the "would not fit" message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from common.plan import InputSize, plan_run
from featurizer import checkout
from featurizer.cli import main as cli
from featurizer.plan import TEMPLATE_LIMITS
from local.template import load_template


def plan_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert cli(["plan", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_table_gives_workers_disk_timeout_hours_and_dollars_for_both_architectures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = plan_lines(capsys, "--images", "1e6", "10,000,000", "100_000_000", "--bytes-per-image", "5000")

    assert (
        lines[0]
        == "limits: MaximumCapacity 64 vCPU / 256 GB / 1,000 GB, MaxExecutors 10, ExecutionTimeoutMinutes 120"
    )
    assert lines[1] == "workers: driver 4 vCPU / 16 GB, executors 4 vCPU / 8 GB each; images of 5,000 bytes"
    assert lines[3].split() == [
        "images", "workers", "executor", "disk", "timeout", "hours", "x86_64", "USD", "arm64", "USD", "fits"
    ]  # fmt: skip
    for line, images in zip(lines[4:7], (10**6, 10**7, 10**8), strict=True):
        planned = plan_run(InputSize(images, images * 5000), TEMPLATE_LIMITS)
        sizing = planned.sizing
        assert line.split() == [
            f"{images:,}", "1", "+", str(sizing.executors), str(sizing.executor_disk_gb), "GB",
            f"{sizing.timeout_minutes:,}", "min", f"{planned.hours:,.2f}",
            f"{planned.cost_usd['x86_64']:,.2f}", f"{planned.cost_usd['arm64']:,.2f}", "yes",
        ]  # fmt: skip
    assert lines[8].startswith(
        "prices (USD, on demand, us-east-1, https://aws.amazon.com/emr/pricing/): x86_64 0.052624"
    )
    assert "arm64 taken to be as fast (not measured)" in lines[9]


def test_a_run_that_would_not_fit_is_marked_and_says_what_to_raise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = plan_lines(capsys, "--images", "1e8", "1e9")

    assert lines[1].endswith("images of 899,000 bytes (not given: priced as photos)")
    assert lines[4].endswith("yes") and lines[5].endswith("no")
    (problem,) = plan_run(InputSize(10**9), TEMPLATE_LIMITS).problems
    assert lines[7] == problem
    assert problem.startswith("1,000,000,000 images would not fit: ")
    assert "To fit, raise MaxExecutors to at least " in problem
    assert "; or split the input into parts of at most " in problem


def test_the_limits_and_prices_can_be_changed(capsys: pytest.CaptureFixture[str]) -> None:
    default = plan_run(InputSize(10**7), TEMPLATE_LIMITS)
    lines = plan_lines(
        capsys, "--images", "1e7", "--max-executors", "2", "--architecture", "arm64", "--vcpu-hour-usd", "1"
    )

    assert lines[3].split()[-3:] == ["arm64", "USD", "fits"]
    row = lines[4].split()
    assert row[1:4] == ["1", "+", "2"]
    assert float(row[-2].replace(",", "")) > default.cost_usd["arm64"]
    assert "arm64 1.0 per vCPU-hour, 0.004628 per GB-hour" in lines[6]


def test_a_price_without_its_architecture_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        cli(["plan", "--images", "1e6", "--gb-hour-usd", "0.01"])

    assert refused.value.code == 2
    assert "a price given needs --architecture" in capsys.readouterr().err


@pytest.mark.parametrize("count", ["0", "1.5", "many", "-3"])
def test_counts_that_are_no_number_of_images_are_refused(
    capsys: pytest.CaptureFixture[str], count: str
) -> None:
    with pytest.raises(SystemExit):
        cli(["plan", "--images", count])

    assert "must be a whole number of images like 1000000 or 1e6" in capsys.readouterr().err


def test_the_default_limits_are_the_templates() -> None:
    parameters = {
        name: str(p["Default"]) for name, p in load_template()["Parameters"].items() if "Default" in p
    }
    workers, capacity = TEMPLATE_LIMITS.workers, TEMPLATE_LIMITS.capacity

    assert (workers.driver_vcpu, workers.executor_vcpu) == (
        int(parameters["DriverCores"]),
        int(parameters["ExecutorCores"]),
    )
    assert (f"{workers.driver_memory_gb}g", f"{workers.executor_memory_gb}g") == (
        parameters["DriverWorkerMemory"],
        parameters["ExecutorWorkerMemory"],
    )
    assert (f"{capacity.vcpu} vCPU", f"{capacity.memory_gb} GB", f"{capacity.disk_gb} GB") == (
        parameters["MaximumCpu"],
        parameters["MaximumMemory"],
        parameters["MaximumDisk"],
    )
    assert TEMPLATE_LIMITS.max_executors == int(parameters["MaxExecutors"])
    assert TEMPLATE_LIMITS.min_timeout_minutes == int(parameters["ExecutionTimeoutMinutes"])


def test_without_a_checkout_the_plan_says_where_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkout, "PLAN", tmp_path / "lambda" / "common" / "plan.py")
    monkeypatch.delitem(sys.modules, checkout.MODULE)

    with pytest.raises(checkout.ControlPlaneMissing, match="run this from a checkout of the repository"):
        checkout.control_plane_plan()
