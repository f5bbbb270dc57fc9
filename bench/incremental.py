"""What the feature store saves (issue 21): a first run, a second after 1% more images, then a refit.

    FEATURIZER_WEIGHTS=../shared/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        .venv/bin/python bench/incremental.py                  # 10,000 images of 100x100, then 100 more
        .venv/bin/python bench/incremental.py --images 2000    # a quick check

Each run is `featurizer run` (or `featurizer refit`) in its own child process, one after the other, under
one --output: the first featurizes every image into the store, the second (after --added new images in
the input) only those, and the refit (another --pca-k) none. Prints each run's featurize stage and whole
time (from the job's start to its completion flag), the images that went through the model, each run's
stages (`timings.json`), and the ratios to the first run. Goals: the second run's featurize stage at most
0.10 of the first's, with images_through_model equal to the images added; the refit's whole time at most
0.30 of the first's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path

import workloads
from processes import run_measured

WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "featurizer-bench" / "incremental"


def featurizer(args: list[str], out: Path, run_id: str) -> dict:
    """One `featurizer` command in a child process; its stages, whole time and counts."""
    command = [sys.executable, "-m", "featurizer.cli", *args, "--output", str(out), "--run-id", run_id]
    status, _ = run_measured(command, dict(os.environ), WORK / f"{run_id}.log")
    if status != 0:
        raise RuntimeError(f"{' '.join(args[:1])} exited {status}; see {WORK / f'{run_id}.log'}")
    run = out / run_id
    manifest = json.loads((run / "manifest.json").read_text())
    completed = json.loads((run / "_COMPLETED.json").read_text())
    wall = datetime.fromisoformat(completed["finished_at"]) - datetime.fromisoformat(manifest["started_at"])
    stages = json.loads((run / "timings.json").read_text())["stages"]
    return {"stages": stages, "seconds": wall.total_seconds(), "counts": manifest["counts"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--added", type=float, default=0.01, help="the share of new images (default 0.01)")
    args = parser.parse_args()
    added = max(1, round(args.images * args.added))
    WORK.mkdir(parents=True, exist_ok=True)
    pool = workloads.images(WORK / f"pool-{args.images + added}", args.images + added, workloads.SMALL)
    data = WORK / "input"
    shutil.rmtree(data, ignore_errors=True)
    pictures = sorted(pool.rglob("*.jpg"))
    for path in pictures[: args.images]:
        (data / path.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(path, data / path.parent.name / path.name)
    out = WORK / "runs"
    shutil.rmtree(out, ignore_errors=True)

    runs = {"first": featurizer(["run", "--input", str(data)], out, "first")}
    for path in pictures[args.images :]:
        os.link(path, data / path.parent.name / path.name)
    runs["second"] = featurizer(["run", "--input", str(data)], out, "second")
    runs["refit"] = featurizer(["refit", "--from-run", str(out / "second"), "--pca-k", "20"], out, "refit")

    first = runs["first"]
    print(f"\n{args.images:,} images, then {added:,} more (100x100 JPEGs), one --output")
    print(f"{'run':>8} {'featurize s':>12} {'whole s':>9} {'through model':>14} {'reused':>8}")
    for name, result in runs.items():
        counts = result["counts"]
        featurize = result["stages"].get("featurize", 0.0)
        print(
            f"{name:>8} {featurize:>12.1f} {result['seconds']:>9.1f} "
            f"{counts['images_through_model']:>14,} {counts['images_reused']:>8,}"
        )
    for name, result in runs.items():
        print(f"{name:>8} stages: " + ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items()))
    second, refit = runs["second"], runs["refit"]
    featurize_ratio = second["stages"]["featurize"] / first["stages"]["featurize"]
    refit_ratio = refit["seconds"] / first["seconds"]
    through = second["counts"]["images_through_model"]
    print(
        f"second / first featurize: {featurize_ratio:.3f} (goal <= 0.10); through the model {through:,} of "
        f"{added:,} added; refit / first whole time: {refit_ratio:.3f} (goal <= 0.30)"
    )
    return 0 if featurize_ratio <= 0.10 and through == added and refit_ratio <= 0.30 else 1


if __name__ == "__main__":
    sys.exit(main())
