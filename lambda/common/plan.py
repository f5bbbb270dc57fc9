"""A run's plan before it starts: the executors, disk and timeout its start request asks for, derived from
the input's size within the application's limits, and the hours and dollars that comes to.

Standard library only: `featurizer plan` loads this very file from the checkout, so the CLI prints the
sizing the control plane sends. The model and its assumptions: docs/performance.md ("Plan"). EMR
Serverless gives a worker 20 GB to 200 GB of disk and charges only beyond the 20 GB
(https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/app-behavior.html, "Supported worker
configurations"), and cancels a job run after at most 7 days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

PRICING_PAGE = "https://aws.amazon.com/emr/pricing/"
PRICES_REGION = "us-east-1"


@dataclass(frozen=True)
class Prices:
    """EMR Serverless on-demand USD per vCPU-hour, per GB-hour of memory, and per GB-hour of a worker's
    disk beyond the 20 GB it has free."""

    vcpu_hour: float
    gb_hour: float
    storage_gb_hour: float


# Published on-demand prices in US East (N. Virginia), PRICING_PAGE; arm64 workers are AWS Graviton.
PRICES = {
    "x86_64": Prices(vcpu_hour=0.052624, gb_hour=0.0057785, storage_gb_hour=0.000111),
    "arm64": Prices(vcpu_hour=0.042094, gb_hour=0.004628, storage_gb_hour=0.000111),
}
FREE_DISK_GB = 20  # a worker's disk unless the run asks for more, none of it paid for
MAX_DISK_GB = 200
MAX_TIMEOUT_MINUTES = 10_080

# What one image costs, in vCPU-seconds, on this project's machine (2 cores of an AMD EPYC with AVX-512
# VNNI; Graviton is not measured and is taken to be as fast): docs/performance.md, "The table" (`make
# bench`). Featurizing (listing, reading, decoding, inference, the staging write) is (b), on 5 kB JPEGs
# and on 899 kB photos; between and beyond those two sizes its cost is taken to grow with the bytes.
FEATURIZE_VCPU_SECONDS = ((5_000, 2 / 173.7), (899_000, 2 / 65.0))  # (bytes per image, vCPU-seconds)
# The stages after featurization, from the growth benchmark at 10^6 images (docs/performance.md,
# "Growth"; two executor cores): persist, evaluate, write and report per image; the fit in seconds once
# per run, its cost fixed by the sample (--fit-max-images at its default), taken as no shorter on more
# executors (its 20 partitions would keep more busy: an upper bound).
AFTER_FEATURIZE_VCPU_SECONDS = {
    "persist": 2 * 158 / 1e6,
    "evaluate": 2 * 71 / 1e6,
    "write": 2 * 13 / 1e6,
    "report": 2 * 2 / 1e6,
}
FIT_SECONDS = 215
UNKNOWN_BYTES_PER_IMAGE = 899_000  # an input whose bytes nobody counted is priced as photos
# Bytes an image leaves on its executor's disk: the job caches no features but the fit's bounded sample
# (within the free disk), and its shuffles (the listing dealt into tasks, pca.csv's sort) write a few
# hundred bytes an image. Not measured: about twice that.
DISK_BYTES_PER_IMAGE = 1_000
STARTUP_SECONDS = 120  # the application's and the workers' start, not measured here
# Every worker is billed for at least a minute and takes time to start: each executor gets this much work.
MIN_EXECUTOR_WORK_SECONDS = 600
# EMR's vCPUs and S3's latency are not this machine's: the timeout allows this many times the estimate.
TIMEOUT_FACTOR = 2


@dataclass(frozen=True)
class Workers:
    """The sizes of the driver's worker and of each executor's (the template's DriverCores, ...)."""

    driver_vcpu: int
    driver_memory_gb: int
    executor_vcpu: int
    executor_memory_gb: int


@dataclass(frozen=True)
class Capacity:
    """The application's MaximumCapacity, shared by all its runs."""

    vcpu: int
    memory_gb: int
    disk_gb: int


@dataclass(frozen=True)
class Limits:
    workers: Workers
    capacity: Capacity
    max_executors: int  # MaxExecutors: the most one run takes
    min_timeout_minutes: int  # ExecutionTimeoutMinutes: what a run of unknown size gets, and the least


@dataclass(frozen=True)
class InputSize:
    """The objects under the input (and their bytes), all of them or, when the count stopped at its
    budget, at least that many."""

    images: int
    bytes: int | None = None
    complete: bool = True

    @property
    def bytes_per_image(self) -> float:
        return UNKNOWN_BYTES_PER_IMAGE if self.bytes is None or not self.images else self.bytes / self.images


@dataclass(frozen=True)
class Sizing:
    """What the start request asks for: dynamic allocation's maximum, each executor's disk, the timeout."""

    executors: int
    executor_disk_gb: int
    timeout_minutes: int


@dataclass(frozen=True)
class Plan:
    size: InputSize
    limits: Limits
    sizing: Sizing
    hours: float
    cost_usd: dict[str, float]  # by architecture
    prices: Mapping[str, Prices]
    problems: tuple[str, ...]  # why the run would not fit, each with what to raise

    @property
    def fits(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        workers = self.limits.workers
        return {
            "images": self.size.images,
            "bytes": self.size.bytes,
            "counted": "all" if self.size.complete else "at least (the listing stopped at its time budget)",
            "fits": self.fits,
            "problems": list(self.problems),
            "driver": {"vcpu": workers.driver_vcpu, "memory_gb": workers.driver_memory_gb},
            "executors": self.sizing.executors,
            "executor": {
                "vcpu": workers.executor_vcpu,
                "memory_gb": workers.executor_memory_gb,
                "disk_gb": self.sizing.executor_disk_gb,
            },
            "timeout_minutes": self.sizing.timeout_minutes,
            "hours": round(self.hours, 2),
            "cost_usd": {arch: round(usd, 2) for arch, usd in self.cost_usd.items()},
            "prices": {
                "region": PRICES_REGION,
                "page": PRICING_PAGE,
                **{arch: asdict(prices) for arch, prices in self.prices.items()},
            },
        }


def vcpu_seconds_per_image(bytes_per_image: float) -> float:
    (small, small_cost), (photo, photo_cost) = FEATURIZE_VCPU_SECONDS
    featurize = small_cost + (photo_cost - small_cost) * max(0.0, bytes_per_image - small) / (photo - small)
    return featurize + sum(AFTER_FEATURIZE_VCPU_SECONDS.values())


def executors_held(limits: Limits) -> int:
    """Executors the application's capacity holds beside the driver, each with the free disk."""
    workers, capacity = limits.workers, limits.capacity
    return min(
        (capacity.vcpu - workers.driver_vcpu) // workers.executor_vcpu,
        (capacity.memory_gb - workers.driver_memory_gb) // workers.executor_memory_gb,
        capacity.disk_gb // FREE_DISK_GB - 1,
    )


def default_sizing(limits: Limits) -> Sizing:
    """A run of unknown size: every executor it may take, the free disk, the template's timeout."""
    return Sizing(
        max(1, min(limits.max_executors, executors_held(limits))), FREE_DISK_GB, limits.min_timeout_minutes
    )


def sizing_for(size: InputSize | None, limits: Limits) -> Sizing:
    return default_sizing(limits) if size is None else plan_run(size, limits).sizing


@dataclass(frozen=True)
class _Needs:
    """What `size` needs from `executors` executors."""

    executors: int
    work: float  # vCPU-seconds of the executors
    disk_gb: int  # each executor's
    seconds: float
    timeout_minutes: int


def _needs(size: InputSize, executors: int, limits: Limits) -> _Needs:
    work = size.images * vcpu_seconds_per_image(size.bytes_per_image)
    seconds = STARTUP_SECONDS + FIT_SECONDS + work / (executors * limits.workers.executor_vcpu)
    disk = max(FREE_DISK_GB, math.ceil(size.images * DISK_BYTES_PER_IMAGE / executors / 1e9))
    return _Needs(executors, work, disk, seconds, math.ceil(seconds * TIMEOUT_FACTOR / 60))


def _executors(size: InputSize, limits: Limits) -> int:
    """As many as keep each one busy MIN_EXECUTOR_WORK_SECONDS, within the limits; all of them for an
    input counted only in part (it may be far larger)."""
    most = max(1, min(limits.max_executors, executors_held(limits)))
    if not size.complete:
        return most
    busy = _needs(size, 1, limits).work // (limits.workers.executor_vcpu * MIN_EXECUTOR_WORK_SECONDS)
    return max(1, min(most, int(busy)))


def _sizing(size: InputSize, needs: _Needs, limits: Limits) -> Sizing:
    if not size.complete:  # the most disk the capacity gives each executor, and EMR's longest timeout
        disk = (limits.capacity.disk_gb - FREE_DISK_GB) // needs.executors
        return Sizing(needs.executors, max(FREE_DISK_GB, min(MAX_DISK_GB, disk)), MAX_TIMEOUT_MINUTES)
    timeout = max(limits.min_timeout_minutes, needs.timeout_minutes)
    return Sizing(needs.executors, min(MAX_DISK_GB, needs.disk_gb), min(MAX_TIMEOUT_MINUTES, timeout))


def _held_capacity(executors: int, disk_gb: int, workers: Workers) -> Capacity:
    """The capacity that holds the driver and `executors` executors of `disk_gb` each."""
    return Capacity(
        vcpu=workers.driver_vcpu + executors * workers.executor_vcpu,
        memory_gb=workers.driver_memory_gb + executors * workers.executor_memory_gb,
        disk_gb=FREE_DISK_GB + executors * disk_gb,
    )


def _raise_capacity(needed: Capacity, have: Capacity) -> list[str]:
    return [
        f"{name} to at least {want:,} {unit}"
        for name, want, got, unit in (
            ("MaximumCpu", needed.vcpu, have.vcpu, "vCPU"),
            ("MaximumMemory", needed.memory_gb, have.memory_gb, "GB"),
            ("MaximumDisk", needed.disk_gb, have.disk_gb, "GB"),
        )
        if want > got
    ]


def _reasons(needs: _Needs, limits: Limits) -> list[str]:
    reasons = []
    disk = _held_capacity(needs.executors, needs.disk_gb, limits.workers).disk_gb
    if needs.disk_gb > MAX_DISK_GB:
        reasons.append(
            f"each of {needs.executors} executors would need {needs.disk_gb:,} GB of disk for its share "
            f"of the input, more than the {MAX_DISK_GB} GB an EMR Serverless worker can have"
        )
    elif disk > limits.capacity.disk_gb:
        reasons.append(
            f"{needs.executors} executors of {needs.disk_gb} GB of disk and the driver need {disk:,} GB, "
            f"more than MaximumDisk ({limits.capacity.disk_gb:,} GB)"
        )
    if needs.timeout_minutes > MAX_TIMEOUT_MINUTES:
        reasons.append(
            f"it would take about {needs.seconds / 3600:,.0f} hours on {needs.executors} executors, and with "
            f"the timeout's margin ({TIMEOUT_FACTOR}x) {needs.timeout_minutes:,} minutes, more than EMR "
            f"Serverless' {MAX_TIMEOUT_MINUTES:,} (7 days)"
        )
    return reasons


def _raise_limits(size: InputSize, needs: _Needs, limits: Limits) -> str | None:
    """What to raise so that enough executors share the disk and the time, and the application holds
    them; None when the limits are not what stops the run."""
    seconds = MAX_TIMEOUT_MINUTES * 60 / TIMEOUT_FACTOR - STARTUP_SECONDS - FIT_SECONDS
    wanted = max(
        needs.executors,
        math.ceil(needs.work / (limits.workers.executor_vcpu * seconds)),
        math.ceil(size.images * DISK_BYTES_PER_IMAGE / (MAX_DISK_GB * 1e9)),
    )
    changes = [f"MaxExecutors to at least {wanted}"] if wanted > limits.max_executors else []
    held = _held_capacity(wanted, _needs(size, wanted, limits).disk_gb, limits.workers)
    changes += _raise_capacity(held, limits.capacity)
    return f"raise {', '.join(changes)}" if changes else None


def _fits(images: int, bytes_per_image: float, limits: Limits) -> bool:
    size = InputSize(images, round(images * bytes_per_image))
    return not _reasons(_needs(size, _executors(size, limits), limits), limits)


def largest_fitting(bytes_per_image: float, limits: Limits, below: int) -> int:
    """The most images (fewer than `below`, which do not fit) one run within these limits takes."""
    low, high = 0, below
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _fits(middle, bytes_per_image, limits) else (low, middle)
    return low


def plan_run(size: InputSize, limits: Limits, prices: Mapping[str, Prices] = PRICES) -> Plan:
    """The sizing of the run, its hours and cost (every worker held for the whole run: an upper bound),
    and, if it would not fit EMR Serverless' limits or the application's, why and what to raise."""
    workers = limits.workers
    if executors_held(limits) < 1:
        needed = _held_capacity(1, FREE_DISK_GB, workers)
        problem = (
            f"MaximumCapacity ({limits.capacity.vcpu} vCPU, {limits.capacity.memory_gb} GB, "
            f"{limits.capacity.disk_gb} GB of disk) cannot hold the driver and one executor: raise "
            + ", ".join(_raise_capacity(needed, limits.capacity))
        )
        sizing = default_sizing(limits)
        return Plan(size, limits, sizing, 0.0, dict.fromkeys(prices, 0.0), prices, (problem,))
    needs = _needs(size, _executors(size, limits), limits)
    sizing = _sizing(size, needs, limits)
    problems: tuple[str, ...] = ()
    if reasons := _reasons(needs, limits):
        fixes = [fix] if (fix := _raise_limits(size, needs, limits)) else []
        most = largest_fitting(size.bytes_per_image, limits, size.images)
        fixes.append(f"split the input into parts of at most {most:,} images")
        problems = (
            f"{size.images:,} images would not fit: {'; '.join(reasons)}. To fit, {'; or '.join(fixes)}.",
        )
    hours = needs.seconds / 3600
    held = _held_capacity(sizing.executors, sizing.executor_disk_gb, workers)
    extra_disk = held.disk_gb - (sizing.executors + 1) * FREE_DISK_GB
    cost = {
        arch: hours * (held.vcpu * p.vcpu_hour + held.memory_gb * p.gb_hour + extra_disk * p.storage_gb_hour)
        for arch, p in prices.items()
    }
    return Plan(size, limits, sizing, hours, cost, prices, problems)
