"""How the job's cost grows with its input (issue 20's growth table), without the CNN.

    FEATURIZER_WEIGHTS=../shared/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        .venv/bin/python bench/growth.py                        # persist..report at 10^5 and 10^6 rows
        .venv/bin/python bench/growth.py --sizes 100000 1000000 3000000
        .venv/bin/python bench/growth.py --listing 1000000      # the read stage on 10^6 files
        .venv/bin/python bench/growth.py --lr-sweep             # LogisticRegression's defaults

  stages   the job's own persist -> fit -> evaluate -> write -> report (`job.after_featurization` and
           `job.flag`) on made-up featurized images, in Spark's local-cluster mode (a driver JVM and two
           executor JVMs of one core and a 1.25 GB heap each, as much per core as EMR gives the template's
           executors), in a child process whose tree is sampled for peak
           memory. The rows are real features of generated images (one `featurizer run` on 500 of them),
           spread into --classes classes by a per-class offset and made distinct by noise, so the
           classifier has work to do; their sizes are what the stages' cost depends on (1280 floats).
  listing  the job's read stage (listing by tasks, ids, labels, split, counts) on empty files in a local
           folder, one sub-folder per 1,000 files.
  lr-sweep accuracy and fit time at each regularization and iteration cap, on one sample's worth of rows.

Each size is measured in one child run after the previous one (the machines are noisy: quote the
ratios between sizes, measured minutes apart in one run).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import workloads
from processes import PeakMemory, run_measured
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from featurizer import job
from featurizer.catalog import CatalogSummary
from featurizer.featurize import FEATURIZED_SCHEMA
from featurizer.model import as_model_input, fit
from featurizer.options import FEATURE_COUNT, WEIGHTS_ENV, JobOptions
from featurizer.outputs import read_parquet, write_parquet
from featurizer.partitioning import task_slots
from featurizer.progress import Progress
from featurizer.session import MASTER_ENV, local_session
from featurizer.stratified import class_counts, draw

CLUSTER = "local-cluster[2,1,2048]"
# Each executor's heap: as much per core as EMR gives the template's executors (5g of heap for 4 cores).
EXECUTOR_HEAP = "1280m"
STAGES = ("persist", "fit", "evaluate", "write", "report")
ROWS_PER_FILE = 50_000  # one generator task's rows: about 250 MB of Parquet
TEST_FRACTION = 0.2
SWEEP_ROWS = 62_500  # 50,000 to fit on


def seed_features(work: Path) -> tuple[Path, Path]:
    """(the features of 500 generated images as .npz, their images' folder), from one real run."""
    images = workloads.images(work / "seed-images", 500, workloads.SMALL)
    seeds = work / "seed-features.npz"
    if not seeds.is_file():
        out = work / "seed-run"
        command = [sys.executable, "-m", "featurizer.cli", "run", "--input", str(images)]
        status, _ = run_measured(
            [*command, "--output", str(out), "--run-id", "seed"], dict(os.environ), work / "seed.log"
        )
        if status != 0:
            raise RuntimeError(f"the seed run exited {status}; see {work / 'seed.log'}")
        table = pq.read_table(out / "seed" / "features", columns=["label", "features"])
        values = np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
        np.savez(seeds, features=values, labels=np.array(table.column("label").to_pylist()))
    return seeds, images


def _rows(batches: Iterator[pa.RecordBatch], seeds: Path, classes: int) -> Iterator[pa.RecordBatch]:
    """Made-up featurized rows for a range of row numbers: row i is of class i mod `classes`, a seed
    image of that class's fruit, moved by the class's offset, plus noise; clipped at 0 as ReLU6 is."""
    loaded = np.load(seeds)
    features, fruits = loaded["features"], loaded["labels"]
    names = sorted(set(fruits))
    by_fruit = [features[fruits == name] for name in names]
    spread = features.std(axis=0) + 1e-6
    offsets = np.random.default_rng(0).normal(0, 0.08, (classes, FEATURE_COUNT)) * spread
    for batch in batches:
        ids = batch.column(0).to_numpy()
        rng = np.random.default_rng(int(ids[0]))
        label = ids % classes
        pool = [by_fruit[c % len(names)] for c in label]
        picked = np.stack([p[rng.integers(len(p))] for p in pool])
        noise = rng.normal(0, 1.0, (len(ids), FEATURE_COUNT)).astype(np.float32) * spread
        values = np.clip(picked + offsets[label] + noise, 0, None).astype(np.float32)
        yield pa.RecordBatch.from_pydict(
            {
                "image_id": [f"{i:020x}" for i in ids],
                "path": [f"synthetic/class-{c:03d}/{i}.jpg" for c, i in zip(label, ids, strict=True)],
                "label": [f"class-{c:03d}" for c in label],
                "features": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, values.size + 1, FEATURE_COUNT, dtype=np.int32)),
                    pa.array(values.reshape(-1)),
                ),
            }
        )


def make_rows(spark: SparkSession, rows: int, seeds: Path, classes: int, target: Path) -> None:
    """`rows` featurized images as the job stages them (FEATURIZED_SCHEMA), split as the job splits."""
    made = spark.range(0, rows, numPartitions=max(1, rows // ROWS_PER_FILE)).mapInArrow(
        lambda batches: _rows(batches, seeds, classes),
        "image_id string, path string, label string, features array<float>",
    )
    split = F.when(draw("image_id", 42) < TEST_FRACTION, "test").otherwise("train")
    staged = made.select(
        "image_id",
        "path",
        "label",
        split.alias("split"),
        "features",
        F.lit(None).cast("string").alias("error"),
    )
    write_parquet(staged, str(target))


def measure_stages(staged: Path, images: Path, out: Path, rows: int) -> dict:
    """persist..report on the staged rows, timed as the job times them (runs in the measured child)."""
    spark = local_session({"spark.executor.memory": EXECUTOR_HEAP})
    weights = os.environ.get(WEIGHTS_ENV) or "imagenet"
    options = JobOptions(input=str(images), output=str(out), run_id=f"growth-{rows}", weights=weights)
    run = job.Run(spark, job.prepare(options), Progress(io.StringIO()))
    run.replace_outputs()
    frame = read_parquet(spark, str(staged), spark.createDataFrame([], FEATURIZED_SCHEMA).schema)
    listing = CatalogSummary(files_found=rows, images_found=rows, images_unlabelled=0)
    metrics, described = job.after_featurization(run, frame, listing)
    started = time.perf_counter()
    job.flag(run, metrics, described)
    stages = run.timer.as_dict()["stages"] | {"report": time.perf_counter() - started}
    return {
        "rows": rows,
        "stages": stages,
        "accuracy": metrics["accuracy"],
        "images_fitted": metrics["images_fitted"],
        "train_images": metrics["train_images"],
    }


def measure_listing(folder: Path) -> dict:
    """The read stage as the job runs it: list by tasks, catalog, counts (runs in the measured child)."""
    spark = local_session()
    started = time.perf_counter()
    options = JobOptions(input=str(folder), output=str(folder.parent / "unused"), run_id="listing")
    with job.read_input(spark, options, task_slots(spark)) as (listing, _):
        pass
    return {"files": listing.files_found, "seconds": time.perf_counter() - started}


def empty_files(root: Path, count: int) -> Path:
    """`count` empty .jpg files, 1,000 per class folder (reused when complete)."""
    marker = root / ".complete"
    if marker.is_file() and marker.read_text() == str(count):
        return root
    for index in range(count):
        folder = root / f"class-{index // 1000:05d}"
        if index % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:09d}.jpg").touch()
    marker.write_text(str(count))
    return root


def lr_sweep(staged: Path) -> list[dict]:
    """Test accuracy and fit seconds of the job's pipeline at each (regParam, maxIter)."""
    spark = local_session()
    frame = as_model_input(spark.read.parquet(str(staged))).drop("features")
    train = frame.where("split = 'train'").cache()
    test = frame.where("split = 'test'").cache()
    train.count(), test.count()
    labels = class_counts(train, "label")
    results = []
    for reg_param in (0.0, 0.001, 0.01, 0.1):
        for max_iter in (20, 50, 100):
            started = time.perf_counter()
            model = fit(train, labels, 10, None, "scaled", reg_param, max_iter)
            seconds = time.perf_counter() - started
            predicted = model.transform(test).where("label = predicted_label").count()
            results.append(
                {
                    "reg_param": reg_param,
                    "max_iter": max_iter,
                    "seconds": seconds,
                    "accuracy": predicted / test.count(),
                }
            )
    return results


def _child(args: argparse.Namespace) -> None:
    """One measured step, in its own process tree; its result goes to --result as JSON."""
    if args.child == "make":
        result: object = make_rows(local_session(), args.rows, args.seeds, args.classes, args.staged)
    elif args.child == "stages":
        result = measure_stages(args.staged, args.images, args.out, args.rows)
    elif args.child == "listing":
        result = measure_listing(args.images)
    else:
        result = lr_sweep(args.staged)
    args.result.write_text(json.dumps(result))


def in_child(work: Path, step: str, master: str, **flags: object) -> tuple[object, PeakMemory]:
    result = work / f"{step}.json"
    command = [sys.executable, __file__, "--work", str(work), "--child", step, "--result", str(result)]
    command += [item for name, value in flags.items() for item in (f"--{name}", str(value))]
    log = work / f"{step}-{flags.get('rows', '')}.log"
    status, peaks = run_measured(command, dict(os.environ) | {MASTER_ENV: master}, log)
    if status != 0:
        raise RuntimeError(f"{step} exited {status}; see {log}")
    return json.loads(result.read_text()), peaks


def mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB"


def print_stages(measured: list[tuple[dict, PeakMemory]]) -> None:
    print(f"\nafter featurization, {CLUSTER}: seconds per million images, and peak memory")
    header = (
        f"{'images':>10}"
        + "".join(f"{s:>10}" for s in STAGES)
        + f"{'total':>10}{'driver':>10}{'executor':>10}"
    )
    print(header + f"{'fitted':>10}{'accuracy':>10}")
    for result, peaks in measured:
        per_million = {s: result["stages"][s] * 1e6 / result["rows"] for s in STAGES}
        cells = "".join(f"{per_million[s]:>10,.0f}" for s in STAGES)
        print(
            f"{result['rows']:>10,}{cells}{sum(per_million.values()):>10,.0f}{mb(peaks.driver):>10}"
            f"{mb(peaks.executor_jvm):>10}{result['images_fitted']:>10,}{result['accuracy']:>10.3f}"
        )
    (low, low_peaks), *rest = measured
    for result, peaks in rest:
        ratios = "  ".join(
            f"{s} {(result['stages'][s] / result['rows']) / (low['stages'][s] / low['rows']):.2f}"
            for s in STAGES
        )
        print(f"per image at {result['rows']:,} / at {low['rows']:,}: {ratios}")
        print(
            f"peak memory at {result['rows']:,} / at {low['rows']:,}: "
            f"driver {peaks.driver / low_peaks.driver:.2f}  "
            f"executor {peaks.executor_jvm / low_peaks.executor_jvm:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "featurizer-growth"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--listing", type=int, help="measure the read stage on this many files instead")
    parser.add_argument(
        "--lr-sweep", action="store_true", help="measure LogisticRegression's settings instead"
    )
    parser.add_argument("--child", choices=("make", "stages", "listing", "sweep"), help=argparse.SUPPRESS)
    for hidden in ("result", "seeds", "staged", "images", "out"):
        parser.add_argument(f"--{hidden}", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        _child(args)
        return
    if args.listing:
        folder = empty_files(args.work / f"files-{args.listing}", args.listing)
        result, peaks = in_child(args.work, "listing", CLUSTER, images=folder)
        print(
            f"read stage, {CLUSTER}, {result['files']:,} files: {result['seconds']:.1f} s "
            f"({result['seconds'] * 1e6 / result['files']:,.0f} s per million files); peak memory: driver "
            f"{mb(peaks.driver)} (Python {mb(peaks.driver_python)}, JVM {mb(peaks.driver_jvm)}), "
            f"executor {mb(peaks.executor_jvm)}, Python workers {mb(peaks.workers_total)}"
        )
        return
    seeds, images = seed_features(args.work)
    if args.lr_sweep:
        staged = args.work / "staged-sweep"
        in_child(
            args.work, "make", "local[2]", rows=SWEEP_ROWS, seeds=seeds, classes=args.classes, staged=staged
        )
        swept, _ = in_child(args.work, "sweep", "local[2]", staged=staged)
        print(f"LogisticRegression on the job's pipeline, {SWEEP_ROWS * 4 // 5:,} rows to fit, local[2]")
        print(f"{'regParam':>10}{'maxIter':>9}{'seconds':>9}{'accuracy':>10}")
        for row in swept:
            print(f"{row['reg_param']:>10}{row['max_iter']:>9}{row['seconds']:>9.1f}{row['accuracy']:>10.3f}")
        return
    measured = []
    for rows in args.sizes:
        staged = args.work / f"staged-{rows}"
        if not (staged / "_SUCCESS").is_file():
            in_child(
                args.work, "make", "local[2]", rows=rows, seeds=seeds, classes=args.classes, staged=staged
            )
        measured.append(
            in_child(
                args.work, "stages", CLUSTER, rows=rows, staged=staged, images=images, out=args.work / "runs"
            )
        )
        print(json.dumps(measured[-1][0] | {"peaks": vars(measured[-1][1])}), flush=True)
    print_stages(measured)


if __name__ == "__main__":
    main()
