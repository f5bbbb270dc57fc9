"""The Spark sizing the control plane sends, derived from the workers' sizes the template gives."""

from __future__ import annotations

import pytest

from common.config import WorkerSizing, env_quantity
from common.errors import MissingConfigurationError

SIZES = {
    "SPARK_DRIVER_CORES": "4",
    "DRIVER_WORKER_MEMORY": "16g",
    "SPARK_EXECUTOR_CORES": "4",
    "EXECUTOR_WORKER_MEMORY": "8g",
    "SPARK_EXECUTOR_MEMORY_OVERHEAD": "3g",
    "SPARK_MIN_EXECUTORS": "1",
    "SPARK_MAX_EXECUTORS": "10",
}


def test_the_heaps_are_what_the_workers_leave_beside_emrs_overhead_and_the_python_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SIZES.items():
        monkeypatch.setenv(name, value)

    sizing = WorkerSizing.from_env()

    # 16 GB worker: heap + 10% overhead = 14894 MB x 1.1 = 16383 MB, the most that fits
    assert (sizing.driver_cores, sizing.driver_memory) == (4, "14894m")
    assert (sizing.executor_memory, sizing.executor_memory_overhead) == ("5g", "3g")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "SPARK_EXECUTOR_MEMORY_OVERHEAD",
            "8g",
            "(8g) must leave the executor's JVM at least 1g of its 8g worker",
        ),
        ("DRIVER_WORKER_MEMORY", "16GB", "must be a whole number of GB like 8g, got '16GB'"),
    ],
)
def test_sizes_that_leave_no_heap_fail_the_cold_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    for variable, setting in {**SIZES, name: value}.items():
        monkeypatch.setenv(variable, setting)

    with pytest.raises(MissingConfigurationError) as refused:
        WorkerSizing.from_env()

    assert refused.value.name == name and problem in str(refused.value)


@pytest.mark.parametrize(
    ("value", "read"), [("64 vCPU", 64), ("64vcpu", 64), ("64", 64), (" 128 VCPU ", 128)]
)
def test_capacities_are_read_as_emr_serverless_writes_them(
    monkeypatch: pytest.MonkeyPatch, value: str, read: int
) -> None:
    monkeypatch.setenv("MAXIMUM_CPU", value)

    assert env_quantity("MAXIMUM_CPU", "vCPU") == read


@pytest.mark.parametrize("value", ["64 GB", "sixty-four", "64.5 vCPU"])
def test_a_capacity_in_another_unit_fails_the_cold_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MAXIMUM_CPU", value)

    with pytest.raises(MissingConfigurationError) as refused:
        env_quantity("MAXIMUM_CPU", "vCPU")

    assert refused.value.name == "MAXIMUM_CPU" and "must be a whole number of vCPU like 64 vCPU" in str(
        refused.value
    )
