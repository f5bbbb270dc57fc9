"""A run's plan: sized from the input within the application's limits (template.yaml's defaults here), and
when it cannot be, a message naming what to raise that does make it fit."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest

from common.config import JobSettings
from common.plan import (
    FREE_DISK_GB,
    MAX_DISK_GB,
    MAX_TIMEOUT_MINUTES,
    PRICES,
    TIMEOUT_FACTOR,
    Capacity,
    InputSize,
    Limits,
    plan_run,
    sizing_for,
)
from local.template import function_environment, load_template
from tests.unit.control_plane.test_wiring import LAMBDA_RUNTIME, Placeholders

PHOTO, SMALL = 899_000, 5_000  # bytes per image of the measured photos and 100x100 JPEGs


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Limits:
    """The limits the API function reads from the environment template.yaml gives it."""
    environment = function_environment(load_template(), "ApiFunction", Placeholders())
    for name, value in {**environment, **LAMBDA_RUNTIME}.items():
        monkeypatch.setenv(name, value)
    return JobSettings.from_env().limits


def images(count: int, bytes_per_image: int = PHOTO, *, complete: bool = True) -> InputSize:
    return InputSize(count, count * bytes_per_image, complete)


@pytest.mark.parametrize("bytes_per_image", [SMALL, PHOTO])
@pytest.mark.parametrize("count", [10**6, 10**7, 10**8])
def test_runs_of_a_million_to_a_hundred_million_images_fit_the_template_defaults(
    limits: Limits, count: int, bytes_per_image: int
) -> None:
    plan = plan_run(images(count, bytes_per_image), limits)

    assert plan.fits, plan.problems
    workers, capacity, sizing = limits.workers, limits.capacity, plan.sizing
    assert 1 <= sizing.executors <= limits.max_executors
    assert workers.driver_vcpu + sizing.executors * workers.executor_vcpu <= capacity.vcpu
    assert workers.driver_memory_gb + sizing.executors * workers.executor_memory_gb <= capacity.memory_gb
    assert FREE_DISK_GB + sizing.executors * sizing.executor_disk_gb <= capacity.disk_gb
    assert FREE_DISK_GB <= sizing.executor_disk_gb <= MAX_DISK_GB
    assert plan.hours * 60 * TIMEOUT_FACTOR <= sizing.timeout_minutes <= MAX_TIMEOUT_MINUTES
    assert sizing.timeout_minutes >= limits.min_timeout_minutes


def test_the_sizing_hours_and_cost_grow_with_the_input(limits: Limits) -> None:
    """Hours stay flat while executors are added (each gets the same least work), then grow."""
    plans = [plan_run(images(count), limits) for count in (10**3, 10**4, 10**5, 10**6, 10**7, 10**8, 10**9)]

    for smaller, larger in itertools.pairwise(plans):
        assert smaller.sizing.executors <= larger.sizing.executors
        assert smaller.sizing.executor_disk_gb <= larger.sizing.executor_disk_gb
        assert smaller.sizing.timeout_minutes <= larger.sizing.timeout_minutes
        assert smaller.hours <= larger.hours
        assert smaller.cost_usd["x86_64"] < larger.cost_usd["x86_64"]
    assert plans[-1].sizing.executors == limits.max_executors


def test_a_small_input_gets_one_executor_and_the_templates_timeout(limits: Limits) -> None:
    sizing = plan_run(images(1_000, SMALL), limits).sizing

    assert (sizing.executors, sizing.executor_disk_gb) == (1, FREE_DISK_GB)
    assert sizing.timeout_minutes == limits.min_timeout_minutes


def test_an_input_of_unknown_size_is_sized_as_the_template_says(limits: Limits) -> None:
    sizing = sizing_for(None, limits)

    assert (sizing.executors, sizing.executor_disk_gb, sizing.timeout_minutes) == (10, 20, 120)


def test_an_input_counted_in_part_gets_the_largest_run_the_limits_allow(limits: Limits) -> None:
    """It may be far larger than the count: every executor, the disk the capacity leaves, EMR's longest
    timeout."""
    sizing = plan_run(images(300_000, complete=False), limits).sizing

    assert sizing.executors == limits.max_executors
    assert sizing.executor_disk_gb == (limits.capacity.disk_gb - FREE_DISK_GB) // limits.max_executors
    assert sizing.timeout_minutes == MAX_TIMEOUT_MINUTES


def test_more_executors_than_the_capacity_holds_are_not_asked_for(limits: Limits) -> None:
    sizing = plan_run(images(10**8), replace(limits, max_executors=40)).sizing

    assert sizing.executors == (64 - 4) // 4  # MaximumCpu less the driver, in executors of 4 vCPU


def test_the_cost_counts_every_worker_and_the_disk_beyond_the_free_20_gb(limits: Limits) -> None:
    plan = plan_run(images(300_000, complete=False), limits)  # 10 executors of 98 GB
    x86 = PRICES["x86_64"]

    assert plan.cost_usd["x86_64"] == pytest.approx(
        plan.hours * (44 * x86.vcpu_hour + 96 * x86.gb_hour + 10 * (98 - 20) * x86.storage_gb_hour)
    )
    assert plan.cost_usd["arm64"] < plan.cost_usd["x86_64"]


def raised(limits: Limits, fix: str) -> Limits:
    """The limits with the raises the message names."""

    def at_least(name: str, default: int) -> int:
        found = re.search(rf"{name} to at least ([\d,]+)", fix)
        return int(found[1].replace(",", "")) if found else default

    capacity = limits.capacity
    return replace(
        limits,
        max_executors=at_least("MaxExecutors", limits.max_executors),
        capacity=Capacity(
            at_least("MaximumCpu", capacity.vcpu),
            at_least("MaximumMemory", capacity.memory_gb),
            at_least("MaximumDisk", capacity.disk_gb),
        ),
    )


def test_a_run_beyond_seven_days_says_what_to_raise_and_how_to_split_it(limits: Limits) -> None:
    size = images(10**9)
    plan = plan_run(size, limits)

    assert not plan.fits
    (problem,) = plan.problems
    assert problem.startswith("1,000,000,000 images would not fit: ")
    assert "more than EMR Serverless' 10,080 (7 days)" in problem
    assert "To fit, raise MaxExecutors to at least " in problem
    # the sizing is still one EMR takes
    assert plan.sizing.timeout_minutes == MAX_TIMEOUT_MINUTES and plan.sizing.executor_disk_gb <= MAX_DISK_GB
    # what it names does make the run fit
    assert plan_run(size, raised(limits, problem)).fits
    most = int(
        re.search(r"split the input into parts of at most ([\d,]+) images", problem)[1].replace(",", "")
    )
    assert plan_run(images(most), limits).fits
    assert not plan_run(images(most + 1), limits).fits


def test_disk_beyond_a_workers_200_gb_is_shared_by_more_executors(limits: Limits) -> None:
    tight = replace(limits, max_executors=2, capacity=Capacity(64, 256, 10_000))
    size = images(10**9, SMALL)
    plan = plan_run(size, tight)

    (problem,) = plan.problems
    assert "more than the 200 GB an EMR Serverless worker can have" in problem
    assert plan_run(size, raised(tight, problem)).fits


def test_a_capacity_that_cannot_hold_the_driver_and_one_executor_is_named(limits: Limits) -> None:
    plan = plan_run(images(1_000), replace(limits, capacity=Capacity(6, 20, 1000)))

    assert plan.problems == (
        "MaximumCapacity (6 vCPU, 20 GB, 1000 GB of disk) cannot hold the driver and one executor: raise "
        "MaximumCpu to at least 8 vCPU, MaximumMemory to at least 24 GB",
    )


def test_the_plans_longest_timeout_is_the_templates_bound() -> None:
    assert load_template()["Parameters"]["ExecutionTimeoutMinutes"]["MaxValue"] == MAX_TIMEOUT_MINUTES
