"""`featurizer plan`: the workers, disk, timeout, hours and dollars of a run of N images on EMR Serverless,
sized as the control plane sizes its start request (lambda/common/plan.py; docs/performance.md, "Plan")."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from featurizer.checkout import control_plane_plan

plan = control_plane_plan()
# template.yaml's defaults (tests/unit/test_plan_cli.py holds the two equal).
TEMPLATE_LIMITS = plan.Limits(
    workers=plan.Workers(driver_vcpu=4, driver_memory_gb=16, executor_vcpu=4, executor_memory_gb=8),
    capacity=plan.Capacity(vcpu=64, memory_gb=256, disk_gb=1000),
    max_executors=10,
    min_timeout_minutes=120,
)
COUNT = re.compile(r"\d[\d_,]*|\d+(\.\d+)?e\d+")


def image_count(text: str) -> int:
    """A count of images: 1000000, 1_000_000, 1,000,000 or 1e6."""
    if not COUNT.fullmatch(text) or (count := int(float(text.replace(",", "").replace("_", "")))) < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of images like 1000000 or 1e6, got {text!r}"
        )
    return count


def _parser() -> argparse.ArgumentParser:
    limits, workers, capacity = TEMPLATE_LIMITS, TEMPLATE_LIMITS.workers, TEMPLATE_LIMITS.capacity
    parser = argparse.ArgumentParser(
        prog="featurizer plan",
        description="What a run of N images asks EMR Serverless for, how long it takes and what it costs, "
        "for x86_64 and arm64 workers; the limits default to template.yaml's.",
    )
    parser.add_argument("--images", nargs="+", type=image_count, required=True, metavar="N")
    parser.add_argument(
        "--bytes-per-image",
        type=int,
        help=f"the images' mean size (default: priced as photos of {plan.UNKNOWN_BYTES_PER_IMAGE:,} bytes)",
    )
    parser.add_argument("--architecture", choices=tuple(plan.PRICES), help="only this one (default: both)")
    for name, unit in (("vcpu", "vCPU-hour"), ("gb", "GB-hour"), ("storage-gb", "GB-hour of disk")):
        parser.add_argument(f"--{name}-hour-usd", type=float, help=f"price per {unit} (with --architecture)")
    for flag, default, parameter in (
        ("--maximum-cpu", capacity.vcpu, "MaximumCpu, vCPU"),
        ("--maximum-memory", capacity.memory_gb, "MaximumMemory, GB"),
        ("--maximum-disk", capacity.disk_gb, "MaximumDisk, GB"),
        ("--max-executors", limits.max_executors, "MaxExecutors"),
        ("--execution-timeout-minutes", limits.min_timeout_minutes, "ExecutionTimeoutMinutes"),
        ("--driver-cores", workers.driver_vcpu, "DriverCores"),
        ("--driver-worker-memory", workers.driver_memory_gb, "DriverWorkerMemory, GB"),
        ("--executor-cores", workers.executor_vcpu, "ExecutorCores"),
        ("--executor-worker-memory", workers.executor_memory_gb, "ExecutorWorkerMemory, GB"),
    ):
        parser.add_argument(flag, type=int, default=default, help=f"the template's {parameter} ({default})")
    return parser


def _prices(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    overrides = {
        field: value
        for field, value in (
            ("vcpu_hour", args.vcpu_hour_usd),
            ("gb_hour", args.gb_hour_usd),
            ("storage_gb_hour", args.storage_gb_hour_usd),
        )
        if value is not None
    }
    if overrides and args.architecture is None:
        parser.error("a price given needs --architecture: x86_64 and arm64 are priced apart")
    chosen = [args.architecture] if args.architecture else list(plan.PRICES)
    return {arch: replace(plan.PRICES[arch], **overrides) for arch in chosen}


def table(plans: Sequence[Any]) -> str:
    """One row per plan, then why each plan that does not fit would not, and what the numbers rest on."""
    first = plans[0]
    limits, workers, capacity = first.limits, first.limits.workers, first.limits.capacity
    size = f"{first.size.bytes_per_image:,.0f} bytes"
    lines = [
        f"limits: MaximumCapacity {capacity.vcpu} vCPU / {capacity.memory_gb} GB / {capacity.disk_gb:,} GB, "
        f"MaxExecutors {limits.max_executors}, ExecutionTimeoutMinutes {limits.min_timeout_minutes}",
        f"workers: driver {workers.driver_vcpu} vCPU / {workers.driver_memory_gb} GB, executors "
        f"{workers.executor_vcpu} vCPU / {workers.executor_memory_gb} GB each; images of {size}"
        + ("" if first.size.bytes is not None else " (not given: priced as photos)"),
        "",
        f"{'images':>14}  {'workers':>8}  {'executor disk':>13}  {'timeout':>11}  {'hours':>7}  "
        + "  ".join(f"{arch + ' USD':>11}" for arch in first.prices)
        + "  fits",
    ]
    for row in plans:
        sizing = row.sizing
        lines.append(
            f"{row.size.images:>14,}  {f'1 + {sizing.executors}':>8}  {f'{sizing.executor_disk_gb} GB':>13}  "
            f"{f'{sizing.timeout_minutes:,} min':>11}  {row.hours:>7,.2f}  "
            + "  ".join(f"{usd:>11,.2f}" for usd in row.cost_usd.values())
            + f"  {'yes' if row.fits else 'no'}"
        )
    if problems := [problem for row in plans for problem in row.problems]:
        lines += ["", *problems]
    prices = "; ".join(
        f"{arch} {p.vcpu_hour} per vCPU-hour, {p.gb_hour} per GB-hour, {p.storage_gb_hour} per GB-hour of "
        f"disk beyond {plan.FREE_DISK_GB} GB"
        for arch, p in first.prices.items()
    )
    lines += [
        "",
        f"prices (USD, on demand, {plan.PRICES_REGION}, {plan.PRICING_PAGE}): {prices}",
        "every worker counted for the whole run (an upper bound); times from vCPU-seconds per image measured "
        "on an AMD EPYC (AVX-512 VNNI), arm64 taken to be as fast (not measured)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    limits = plan.Limits(
        workers=plan.Workers(
            args.driver_cores, args.driver_worker_memory, args.executor_cores, args.executor_worker_memory
        ),
        capacity=plan.Capacity(args.maximum_cpu, args.maximum_memory, args.maximum_disk),
        max_executors=args.max_executors,
        min_timeout_minutes=args.execution_timeout_minutes,
    )
    prices = _prices(args, parser)
    sizes = [
        plan.InputSize(n, None if args.bytes_per_image is None else n * args.bytes_per_image)
        for n in args.images
    ]
    print(table([plan.plan_run(size, limits, prices) for size in sizes]))
    return 0
