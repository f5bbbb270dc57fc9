"""Featurization speed and memory, side by side, in one run on one machine (issue 6's table).

    FEATURIZER_WEIGHTS=../shared/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 \
        .venv/bin/python bench/performance.py            # the table (56 minutes in the last run on 2 cores)
        .venv/bin/python bench/performance.py --tune     # the settings sweep behind the job's defaults
        .venv/bin/python bench/performance.py --pca      # fit's PCA: Spark ML's against the job's

  (a) engine    the bare ONNX engine on preprocessed tensors: no decoding, no Spark; one process per
                task slot with the job's threads and batch size, all running at once
  (b) spark     the job's own featurize stage in Spark local mode: list -> read -> decode -> featurize
                -> Parquet, on 100x100 JPEGs (like Fruits-360) and on photo-size JPEGs
  (c) notebook  the original notebook's approach in the same Spark session: a Keras model captured in a
                pandas UDF's closure, model.predict per batch
  (d) job       `featurizer run` on 10,812 images: each stage's share of the run (median of --rounds runs)
  memory        peak RSS of the driver (Python + JVM) and of the Python workers at 10,000 and 100,000
                images (whole job, in a child process; median of --rounds runs by driver peak)

The machines are shared and noisy: quote the ratios. (a) and (b) on 100x100 JPEGs alternate for
--rounds rounds (default 3) and the table gives the medians, so each ratio compares minutes-apart runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import notebook_baseline
import numpy as np
import workloads
from processes import PeakMemory, run_measured
from pyspark.ml.feature import PCA
from pyspark.sql import functions as F

from featurizer.catalog import catalog, summarize
from featurizer.decode import preprocess, to_model_input
from featurizer.engines import EngineSpec, load_engine
from featurizer.export import export_onnx
from featurizer.featurize import featurize
from featurizer.listing import list_input
from featurizer.model import SCALED, as_model_input, label_indexer, scaler
from featurizer.options import WEIGHTS_ENV, JobOptions
from featurizer.outputs import write_parquet
from featurizer.partitioning import ARROW_ROWS, arrow_batches, arrow_rows, featurize_tasks, task_slots
from featurizer.pca import CovariancePCA
from featurizer.session import MASTER_ENV, local_session
from featurizer.stratified import class_counts
from featurizer.weights import resolve_weights

CORES = os.cpu_count() or 1
# Featurization as (b) measures it: read -> decode -> featurize -> persist.
FEATURIZE_STAGES = ("read", "featurize", "persist")
MEMORY_MASTER = "local-cluster[2,1,2048]"
TENSOR_POOL = 256


def _engine_worker(
    model_file: str, pool: np.ndarray, batch_size: int, threads: int, seconds: float, start
) -> int:
    engine = load_engine("onnx", model_file, threads)
    batches = [pool[i : i + batch_size] for i in range(0, len(pool) - batch_size + 1, batch_size)]
    engine.extract(batches[0])  # warm-up
    start.wait()
    done, until = 0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        batch = batches[(done // batch_size) % len(batches)]
        engine.extract(batch)
        done += len(batch)
    return done


def bare_engine(
    model_file: Path, pool: np.ndarray, batch_size: int, threads: int, seconds: float = 10.0
) -> float:
    """Images/s of CORES / threads engine processes running together, as the job's task slots do.

    Batches cycle through `pool`, distinct images as in a real run: one batch fed again and again would
    stay in the CPU's cache, which no real input does.
    """
    processes = max(1, CORES // threads)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(processes) as workers:
        start = manager.Barrier(processes)
        jobs = [
            workers.apply_async(_engine_worker, (str(model_file), pool, batch_size, threads, seconds, start))
            for _ in range(processes)
        ]
        return sum(job.get() for job in jobs) / seconds


def featurize_stage(
    spark, folder: Path, model_file: Path, batch_size: int, out: Path, arrow: int = 0
) -> float:
    """Images/s of the job's featurize stage (listing included), as job.py runs it; `arrow` > 0
    overrides the job's Arrow batch rows."""
    threads = int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))
    spec = EngineSpec("onnx", model_file.name, threads)
    processed, through = spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0)
    start = time.perf_counter()
    slots = task_slots(spark)
    listed = list_input(spark, str(folder), slots).cache()
    files, images = catalog(listed, str(folder), 0.2, 42)
    tasks = featurize_tasks(summarize(files).images_found, slots)
    with arrow_batches(spark, arrow or arrow_rows(batch_size)):
        featurized = featurize(images.repartition(tasks, "image_id"), spec, batch_size, processed, through)
        write_parquet(featurized, str(out))
    seconds = time.perf_counter() - start
    listed.unpersist()
    if through.value != processed.value:
        raise RuntimeError(f"{processed.value - through.value} benchmark images did not decode")
    return processed.value / seconds


def baseline_stage(spark, folder: Path, weights: Path, batch_size: int, out: Path) -> float:
    """Images/s of the notebook's approach, reading with binaryFile as the notebook did, in as many tasks
    as the job's of about equal image counts (file packing, no shuffle), Arrow batches of `batch_size`;
    timed like (b) from the listing to the written Parquet."""
    start = time.perf_counter()
    sizes = [path.stat().st_size for path in folder.rglob("*.jpg")]
    settings = notebook_baseline.equal_count_packing(
        len(sizes), sum(sizes), featurize_tasks(len(sizes), task_slots(spark))
    )
    for key, value in (settings | {ARROW_ROWS: str(batch_size)}).items():
        spark.conf.set(key, value)
    scanned = (
        spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(folder.resolve()))
    )
    write_parquet(notebook_baseline.featurize(scanned, weights), str(out))
    seconds = time.perf_counter() - start
    for key in (*settings, ARROW_ROWS):
        spark.conf.unset(key)
    return len(sizes) / seconds


def whole_job(
    folder: Path, out: Path, run_id: str, log: Path, master: str | None = None
) -> tuple[dict, PeakMemory]:
    """`featurizer run` in a child process: its timings.json, manifest and peak memory. Without the feature
    store: every image featurized, whatever an earlier run under `out` did."""
    command = [sys.executable, "-m", "featurizer.cli", "run", "--input", str(folder), "--output", str(out)]
    command.append("--no-store")
    env = dict(os.environ) | ({MASTER_ENV: master} if master else {})
    status, peaks = run_measured([*command, "--run-id", run_id], env, log)
    if status != 0:
        raise RuntimeError(f"featurizer run exited {status}; see {log}")
    run = out / run_id
    timings = json.loads((run / "timings.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    completed = json.loads((run / "_COMPLETED.json").read_text())
    # From the job's start to its completion flag: also counts the report, written after timings.json.
    wall = (
        datetime.fromisoformat(completed["finished_at"]) - datetime.fromisoformat(manifest["started_at"])
    ).total_seconds()
    return {"stages": timings["stages"], "seconds": wall, "images": manifest["counts"]["images_found"]}, peaks


def tensor_pool(folder: Path, count: int = TENSOR_POOL) -> np.ndarray:
    """`count` preprocessed images of the folder (256 x 600 kB: more than any CPU cache)."""
    files = sorted(folder.rglob("*.jpg"))[:count]
    return to_model_input(np.stack([preprocess(path.read_bytes()).pixels for path in files]))


def after_featurization(job: dict) -> float:
    """The share of a whole run's time spent after featurization: fit, evaluate, write, report."""
    return 1 - sum(job["stages"].get(s, 0.0) for s in FEATURIZE_STAGES) / job["seconds"]


def mb(value: int) -> str:
    return f"{value / 2**20:,.0f} MB"


def run_table(args: argparse.Namespace, work: Path, weights: Path, model_file: Path) -> dict:
    small = workloads.images(work / "small", args.images, workloads.SMALL)
    photos = workloads.images(work / "photos", args.photos, workloads.PHOTO)
    results: dict = {"cores": CORES, "batch_size": args.batch_size}

    pool = tensor_pool(small)
    spark = local_session()
    spark.sparkContext.addFile(str(model_file))
    spark.sparkContext.addPyFile(notebook_baseline.__file__)  # its UDF is pickled by reference
    # Start the Python workers and let the JVM compile its hot paths in one untimed round of (b): (a) is
    # steady-state too. (After a warm-up on 2,000 images, the first timed round had the lowest (b)/(a)
    # of its run in each of the four runs whose rounds docs/performance.md lists.)
    featurize_stage(spark, small, model_file, args.batch_size, work / "out" / "warm")
    # (a) and (b) in alternation, so that each ratio compares minutes-apart measurements; the table
    # quotes the medians (the load of a shared machine drifts from one minute to the next).
    rounds = []
    for _ in range(args.rounds):
        engine = bare_engine(model_file, pool, args.batch_size, threads=1)
        stage = featurize_stage(spark, small, model_file, args.batch_size, work / "out" / "b-small")
        rounds.append({"a": engine, "b": stage})
    results["rounds"] = rounds
    results["a_engine"] = statistics.median(r["a"] for r in rounds)
    results["b_spark_small"] = statistics.median(r["b"] for r in rounds)
    results["b_over_a"] = statistics.median(r["b"] / r["a"] for r in rounds)
    results["b_spark_photos"] = featurize_stage(
        spark, photos, model_file, args.batch_size, work / "out" / "b-photos"
    )
    notebook_small = workloads.subset(small, work / "notebook-small", args.notebook_images)
    notebook_photos = workloads.subset(photos, work / "notebook-photos", args.notebook_images // 10)
    for name, folder in (("small", notebook_small), ("photos", notebook_photos)):
        results[f"c_notebook_{name}"] = baseline_stage(
            spark, folder, weights, args.batch_size, work / "out" / f"c-{name}"
        )
    spark.stop()

    jobs = [whole_job(small, work / "out" / "d", "job", work / "d.log")[0] for _ in range(args.rounds)]
    results["d_jobs"] = jobs
    results["d_job"] = sorted(jobs, key=after_featurization)[len(jobs) // 2]  # the median run
    for count in args.memory_sizes:
        folder = workloads.images(work / f"memory-{count}", count, workloads.SMALL)
        # A driver JVM of its own, as on EMR (in local mode one JVM is driver and executor):
        # Spark's local-cluster mode, two executor JVMs of one core each.
        runs = [
            whole_job(folder, work / "out" / f"m{count}", "job", work / f"m{count}.log", MEMORY_MASTER)
            for _ in range(args.rounds)
        ]
        # The JVM's peak is mostly how far G1 grew its heap in that run: quote the median run.
        job, peaks = sorted(runs, key=lambda run: run[1].driver)[len(runs) // 2]
        drivers = [run[1].driver for run in runs]
        results[f"memory_{count}"] = job | {"peak_memory": vars(peaks), "driver_runs": drivers}
    return results


def print_table(r: dict, args: argparse.Namespace) -> None:
    a = r["a_engine"]
    print(f"\n{r['cores']} cores, batch {r['batch_size']}, onnx engine, 1 inference thread per task")
    print(f"(a) and (b) on 100x100 JPEGs: medians of {len(r['rounds'])} alternating rounds")
    print(f"{'':46}{'images/s':>10}{'vs (a)':>8}{'vs (c)':>8}")
    print(f"{'(a) bare engine, preprocessed tensors':46}{a:>10.1f}")
    for name, label in (("small", "100x100 JPEGs"), ("photos", "1600x1200 JPEGs")):
        b, c = r[f"b_spark_{name}"], r[f"c_notebook_{name}"]
        vs_a = r["b_over_a"] if name == "small" else b / a
        print(f"{'(b) featurize stage, ' + label:46}{b:>10.1f}{vs_a:>8.2f}{b / c:>8.1f}")
        print(f"{'(c) notebook approach, ' + label:46}{c:>10.1f}{c / a:>8.2f}")
    rounds = "  ".join(f"{x['b']:.0f}/{x['a']:.0f} = {x['b'] / x['a']:.2f}" for x in r["rounds"])
    print(f"    rounds, (b)/(a): {rounds}")
    job = r["d_job"]
    total = job["seconds"]
    runs = len(r["d_jobs"])
    print(
        f"\n(d) whole job, {job['images']:,} images, median of {runs} runs: {total:.1f} s, "
        f"{job['images'] / total:.1f} images/s"
    )
    for stage, seconds in job["stages"].items():
        print(f"    {stage:<12}{seconds:>8.1f} s{seconds / total:>7.0%}")
    other = total - sum(job["stages"].values())
    print(f"    {'report+flag':<12}{other:>8.1f} s{other / total:>7.0%}")
    shares = "  ".join(f"{after_featurization(j):.0%}" for j in r["d_jobs"])
    print(
        f"    after featurization (fit, evaluate, write, report): {after_featurization(job):.0%} "
        f"(goal <= 25%); runs: {shares}"
    )
    print(
        f"\npeak RSS, {MEMORY_MASTER}, median run of {args.rounds} by driver peak: driver (Python + JVM), "
        "each executor JVM, Python workers"
    )
    header = ("images", "driver py", "driver JVM", "driver", "executor", "1 worker", "workers")
    widths = (12, 12, 12, 10, 10, 10, 10)
    print("".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for count in args.memory_sizes:
        p = r[f"memory_{count}"]["peak_memory"]
        driver = p["driver_python"] + p["driver_jvm"]
        row = (
            p["driver_python"],
            p["driver_jvm"],
            driver,
            p["executor_jvm"],
            p["worker_max"],
            p["workers_total"],
        )
        print(f"{count:>12,}" + "".join(f"{mb(v):>{w}}" for v, w in zip(row, widths[1:], strict=True)))
        each = "  ".join(mb(v) for v in r[f"memory_{count}"]["driver_runs"])
        print(f"{'':12}  driver peak in each run: {each}")
    if len(args.memory_sizes) == 2:
        low, high = (r[f"memory_{c}"]["peak_memory"] for c in args.memory_sizes)
        ratio = (high["driver_python"] + high["driver_jvm"]) / (low["driver_python"] + low["driver_jvm"])
        low_count, high_count = args.memory_sizes
        print(f"driver peak at {high_count:,} / {low_count:,} images: {ratio:.2f} (goal <= 1.2)")


def run_sweep(args: argparse.Namespace, work: Path, model_file: Path) -> dict:
    """(a) and (b) for each inference batch size, Arrow batch and threads per task."""
    small = workloads.subset(
        workloads.images(work / "small", args.images, workloads.SMALL), work / "tune", 4000
    )
    sweep, pool = [], tensor_pool(small)
    for threads in (1, 2):
        spark = local_session({"spark.task.cpus": str(threads)})
        spark.sparkContext.addFile(str(model_file))
        featurize_stage(
            spark, workloads.subset(small, work / "warm", 200), model_file, 16, work / "out" / "w"
        )
        for batch_size in (8, 16, 32, 64):
            for arrow in sorted({batch_size, arrow_rows(batch_size)}):
                engine = bare_engine(model_file, pool, batch_size, threads) if arrow == batch_size else None
                stage = featurize_stage(spark, small, model_file, batch_size, work / "out" / "t", arrow=arrow)
                sweep.append(
                    {
                        "threads": threads,
                        "batch": batch_size,
                        "arrow": arrow,
                        "a": engine,
                        "b": stage,
                    }
                )
        spark.stop()
    header = ("threads/task", "batch", "arrow", "(a) img/s", "(b) img/s", "b/a")
    widths = (12, 7, 7, 11, 11, 6)
    print("\n" + "".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for row in sweep:
        a, b = row.get("a"), row["b"]
        cells = (
            row["threads"],
            row["batch"],
            row["arrow"],
            f"{a:.1f}" if a else "-",
            f"{b:.1f}",
        )
        ratio = f"{b / a:.2f}" if a else "-"
        print("".join(f"{c:>{w}}" for c, w in zip((*cells, ratio), widths, strict=True)))
    return {"sweep": sweep}


def run_pca(args: argparse.Namespace, work: Path) -> dict:
    """Seconds to fit fit's PCA stage (k=10) on the job's own scaled training features of `--images`
    100x100 JPEGs: Spark ML's PCA and the job's CovariancePCA, `--rounds` times each, in alternating
    order, in one new Spark session (its first fits include the JVM compiling, as in a run)."""
    small = workloads.images(work / "small", args.images, workloads.SMALL)
    whole_job(small, work / "out" / "pca", "job", work / "pca.log")
    spark = local_session()
    features = spark.read.parquet(str(work / "out" / "pca" / "job" / "features"))
    train = as_model_input(features).where(F.col("split") == "train")
    label_indexer(class_counts(train, "label"))  # the job's checks on the split, and its first job
    scaled = scaler().fit(train).transform(train).select(SCALED).cache()
    rows = scaled.count()
    estimators = {
        "Spark ML PCA": PCA(k=10, inputCol=SCALED),
        "CovariancePCA (the job's)": CovariancePCA(k=10, inputCol=SCALED),
    }
    seconds: dict[str, list[float]] = {name: [] for name in estimators}
    for round_ in range(args.rounds):
        for name in sorted(estimators, reverse=round_ % 2 == 1):
            start = time.perf_counter()
            estimators[name].fit(scaled)
            seconds[name].append(time.perf_counter() - start)
    spark.stop()
    print(f"\nPCA fit, k=10, {rows:,} training rows of 1280 scaled features; seconds per round")
    for name, times in seconds.items():
        each = "  ".join(f"{t:6.2f}" for t in times)
        print(f"{name:>28}  {each}   median {statistics.median(times):.2f}")
    spark_ml, job = (statistics.median(seconds[name]) for name in estimators)
    print(f"{'':>28}  Spark ML / CovariancePCA: {spark_ml / job:.1f}x")
    return {"pca_rows": rows, "pca_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10_812, help="100x100 JPEGs for (b) and (d)")
    parser.add_argument("--photos", type=int, default=600, help="1600x1200 JPEGs for (b)")
    parser.add_argument("--notebook-images", type=int, default=2_000, help="100x100 JPEGs for (c)")
    parser.add_argument(
        "--memory-sizes", type=lambda v: [int(x) for x in v.split(",") if x], default=[10_000, 100_000]
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating (a)/(b) rounds, (d) runs and memory runs per size"
    )
    parser.add_argument("--batch-size", type=int, default=JobOptions.batch_size)
    parser.add_argument(
        "--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "featurizer-bench"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--tune", action="store_true", help="run the settings sweep instead of the table")
    parser.add_argument("--pca", action="store_true", help="time fit's PCA, Spark ML's and the job's")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1 (got {args.rounds})")
    weights = resolve_weights(os.environ.get(WEIGHTS_ENV) or "imagenet")
    model_file = export_onnx(weights)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.pca:
        results = run_pca(args, args.work)
    elif args.tune:
        results = run_sweep(args, args.work, model_file)
    else:
        results = run_table(args, args.work, weights.path, model_file)
        print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
