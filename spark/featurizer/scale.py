"""`featurizer scale`: from runs of different sizes, the time and EMR Serverless cost of larger ones.

Each run gives one point (images found, total seconds) from its manifest.json and timings.json. A least
squares line fits time = start-up + per-image cost x images; it is extrapolated to 100 thousand,
1 million and 10 million images. The time holds for the capacity the measured runs had: measure on EMR
Serverless, with the workers you price, for an estimate of EMR Serverless.

The cost counts every worker (the driver and the executors) for the whole run, at the published
EMR Serverless on-demand prices for x86 that the control plane's plan uses (lambda/common/plan.py), for
memory and vCPUs (a worker's disk is free up to 20 GB). With dynamic allocation, executors that are not
needed are released, so this is an upper bound for the given number of executors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from featurizer import charts, storage
from featurizer.plan import TEMPLATE_LIMITS, plan

X86_PRICES = plan.PRICES["x86_64"]
TEMPLATE_WORKERS = TEMPLATE_LIMITS.workers
TARGETS = (100_000, 1_000_000, 10_000_000)


class NotEnoughSizes(ValueError):
    """The runs do not have two different sizes: a line through one point says nothing."""


@dataclass(frozen=True)
class MeasuredRun:
    uri: str
    images: int
    seconds: float


@dataclass(frozen=True)
class TimeFit:
    startup_seconds: float
    seconds_per_image: float
    through_origin: bool = False  # the runs implied a negative start-up time, so none is assumed

    def seconds(self, images: int) -> float:
        return self.startup_seconds + self.seconds_per_image * images


@dataclass(frozen=True)
class Workers:
    """Worker sizes and count; by default template.yaml's, and MaxExecutors executors."""

    executors: int = TEMPLATE_LIMITS.max_executors
    executor_vcpu: int = TEMPLATE_WORKERS.executor_vcpu
    executor_memory_gb: float = TEMPLATE_WORKERS.executor_memory_gb
    driver_vcpu: int = TEMPLATE_WORKERS.driver_vcpu
    driver_memory_gb: float = TEMPLATE_WORKERS.driver_memory_gb

    @property
    def vcpu(self) -> int:
        return self.driver_vcpu + self.executors * self.executor_vcpu

    @property
    def memory_gb(self) -> float:
        return self.driver_memory_gb + self.executors * self.executor_memory_gb


@dataclass(frozen=True)
class Estimate:
    images: int
    seconds: float
    cost_usd: float


def read_run(run_uri: str) -> MeasuredRun:
    """Images found (manifest.json) and total seconds (timings.json) of a finished run."""
    manifest = json.loads(storage.read_bytes(storage.join(run_uri, "manifest.json")))
    timings = json.loads(storage.read_bytes(storage.join(run_uri, "timings.json")))
    return MeasuredRun(run_uri, int(manifest["counts"]["images_found"]), float(timings["total_seconds"]))


def fit_time(runs: Sequence[MeasuredRun]) -> TimeFit:
    """Least squares line through (images, seconds); through the origin if its start-up time is negative."""
    if len({run.images for run in runs}) < 2:
        raise NotEnoughSizes(
            "at least two runs of different sizes are needed to separate the start-up time from the "
            f"time per image (got {len(runs)} run(s) of {sorted({r.images for r in runs})} images): run "
            "the job on a smaller or larger sample of the same images, then pass both runs"
        )
    slope, intercept = np.polyfit([r.images for r in runs], [r.seconds for r in runs], 1)
    if slope <= 0:
        raise NotEnoughSizes(
            "the larger runs were not slower than the smaller ones, so the time per image cannot be "
            "estimated: measure runs whose sizes differ more (e.g. ten times)"
        )
    if intercept < 0:
        images = np.array([r.images for r in runs], dtype=float)
        seconds = np.array([r.seconds for r in runs], dtype=float)
        return TimeFit(0.0, float(images @ seconds / (images @ images)), through_origin=True)
    return TimeFit(float(intercept), float(slope))


def cost_usd(seconds: float, workers: Workers, vcpu_hour: float, gb_hour: float) -> float:
    hours = seconds / 3600
    return hours * (workers.vcpu * vcpu_hour + workers.memory_gb * gb_hour)


def estimates(
    fit: TimeFit, workers: Workers, vcpu_hour: float, gb_hour: float, targets: Sequence[int] = TARGETS
) -> list[Estimate]:
    return [
        Estimate(n, fit.seconds(n), cost_usd(fit.seconds(n), workers, vcpu_hour, gb_hour)) for n in targets
    ]


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def table(runs: Sequence[MeasuredRun], fit: TimeFit, rows: Sequence[Estimate], workers: Workers) -> str:
    lines = ["measured runs:", f"  {'images':>12}  {'seconds':>10}  run"]
    lines += [f"  {r.images:>12,}  {r.seconds:>10.1f}  {r.uri}" for r in sorted(runs, key=lambda r: r.images)]
    lines += [
        "",
        f"fit: time = {fit.startup_seconds:.1f} s + {fit.seconds_per_image * 1000:.3f} ms x images"
        + (
            " (the runs implied a negative start-up time: fitted through the origin)"
            if fit.through_origin
            else ""
        ),
        f"cost: driver {workers.driver_vcpu} vCPU / {workers.driver_memory_gb:g} GB + {workers.executors} "
        f"executor(s) of {workers.executor_vcpu} vCPU / {workers.executor_memory_gb:g} GB, held for the "
        f"whole run, at EMR Serverless prices ({plan.PRICING_PAGE})",
        "",
        f"  {'images':>12}  {'time':>14}  {'seconds':>12}  {'cost (USD)':>12}",
    ]
    lines += [
        f"  {e.images:>12,}  {duration(e.seconds):>14}  {e.seconds:>12,.0f}  {e.cost_usd:>12,.2f}"
        for e in rows
    ]
    return "\n".join(lines)


def plot(runs: Sequence[MeasuredRun], fit: TimeFit, rows: Sequence[Estimate]) -> str:
    """SVG: measured runs, the fitted line and the extrapolations, time against images (log-log)."""
    low = max(1, min(r.images for r in runs) // 2)
    line = [(n, fit.seconds(n)) for n in np.geomspace(low, max(TARGETS), 60)]
    marked = [(e.images, e.seconds, f"{duration(e.seconds)}, ${e.cost_usd:,.2f}") for e in rows]
    return charts.loglog(
        [(r.images, r.seconds) for r in runs if r.images > 0 and r.seconds > 0],  # a log axis has no 0
        [(x, y) for x, y in line if y > 0],
        marked,
        "images",
        "seconds",
        "Run time against images: measured and extrapolated",
    )


def _parser() -> argparse.ArgumentParser:
    defaults = Workers()
    parser = argparse.ArgumentParser(
        prog="featurizer scale",
        description="Fit run time against image count over two or more finished runs of different sizes; "
        "extrapolate time and EMR Serverless cost to 100k, 1M and 10M images.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_URI", help="a finished run folder (path or s3://)")
    parser.add_argument("--plot", help="write the plot (SVG) here: a path or s3:// URI")
    parser.add_argument(
        "--executors", type=int, default=defaults.executors, help="executor workers (%(default)s)"
    )
    parser.add_argument("--executor-vcpu", type=int, default=defaults.executor_vcpu, help="(%(default)s)")
    parser.add_argument(
        "--executor-memory-gb", type=float, default=defaults.executor_memory_gb, help="(%(default)s)"
    )
    parser.add_argument("--driver-vcpu", type=int, default=defaults.driver_vcpu, help="(%(default)s)")
    parser.add_argument(
        "--driver-memory-gb", type=float, default=defaults.driver_memory_gb, help="(%(default)s)"
    )
    vcpu_hour, gb_hour = X86_PRICES.vcpu_hour, X86_PRICES.gb_hour
    parser.add_argument("--vcpu-hour-usd", type=float, default=vcpu_hour, help=f"({vcpu_hour})")
    parser.add_argument("--gb-hour-usd", type=float, default=gb_hour, help=f"({gb_hour})")
    return parser


def main(argv: Sequence[str]) -> int:
    """Print the table (and write the plot); 2 when the runs cannot be read or do not differ in size."""
    args = _parser().parse_args(argv)
    workers = Workers(
        args.executors, args.executor_vcpu, args.executor_memory_gb, args.driver_vcpu, args.driver_memory_gb
    )
    try:
        runs = [read_run(uri) for uri in args.runs]
        fit = fit_time(runs)
    except NotEnoughSizes as error:
        print(f"featurizer scale: {error}", file=sys.stderr)
        return 2
    except (OSError, KeyError, ValueError, BotoCoreError, ClientError) as error:
        print(
            f"featurizer scale: cannot read a finished run's manifest.json and timings.json: {error}",
            file=sys.stderr,
        )
        return 2
    rows = estimates(fit, workers, args.vcpu_hour_usd, args.gb_hour_usd)
    print(table(runs, fit, rows, workers))
    if args.plot:
        storage.write_bytes(args.plot, plot(runs, fit, rows).encode(), content_type="image/svg+xml")
        print(f"\nplot: {args.plot}")
    return 0
