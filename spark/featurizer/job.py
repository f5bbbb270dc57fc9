"""The featurization job: read -> decode -> featurize -> persist -> fit -> evaluate -> write -> flag.

Run on EMR Serverless (or any Spark) with:

    spark-submit spark/main.py --input s3://BUCKET/inbox/DATASET/ --output s3://BUCKET/runs/DATASET/ \
        --run-id RUN_ID [--engine onnx|tensorflow] [--model PATH|s3://...onnx]
        [--weights imagenet|PATH|s3://...h5] [--pca-k 10]

and locally with `featurizer run` (same options), which starts Spark in local mode first.
"""

from __future__ import annotations

import logging
import platform
import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyspark
from py4j.protocol import Py4JError
from pyspark import inheritable_thread_target
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurizer import __version__, storage
from featurizer.artifact import ModelArtifact, model_for
from featurizer.catalog import CatalogSummary, catalog, summarize
from featurizer.engines import EngineSpec, engine_version
from featurizer.evaluate import evaluate
from featurizer.featurize import featurize
from featurizer.listing import list_input
from featurizer.model import as_features, as_model_input, choose_k, fit
from featurizer.options import JobOptions, parse_options
from featurizer.outputs import (
    pca_projection,
    read_parquet,
    write_parquet,
    write_single_csv,
)
from featurizer.partitioning import arrow_batches, arrow_rows, featurize_tasks, task_slots
from featurizer.progress import Progress
from featurizer.report import write_report
from featurizer.session import (
    S3ConnectorMissing,
    local_session,
    require_s3a,
    submitted_session,
)
from featurizer.timings import StageTimer
from featurizer.weights import WeightsUnavailable

log = logging.getLogger("featurizer")

COMPLETED_FLAG = "_COMPLETED.json"
FAILED_FLAG = "_FAILED.json"


class InputError(ValueError):
    """The input location cannot be used; nothing was started."""


class OutputMismatch(RuntimeError):
    """The outputs read back do not agree with each other: the run is not declared complete."""


class RunFailed(RuntimeError):
    """The run stopped after it started; `_FAILED.json` says where and why."""


@dataclass(frozen=True)
class Prepared:
    """Everything settled before Spark starts: the options and the model file the workers load."""

    options: JobOptions
    model: ModelArtifact


def prepare(options: JobOptions) -> Prepared:
    """Check the input and get the model, so that a bad argument stops the job before any Spark work."""
    try:
        present = storage.folder_has_files(options.input)
    except Exception as error:  # botocore: credentials, endpoint, access denied
        raise InputError(f"--input {options.input} cannot be read: {error}") from error
    if not present:
        raise InputError(
            f"--input {options.input} does not exist or is empty: point it at a folder of images"
        )
    return Prepared(options, model_for(options))


@dataclass
class _Run:
    spark: SparkSession
    prepared: Prepared
    progress: Progress
    timer: StageTimer

    @property
    def options(self) -> JobOptions:
        return self.prepared.options

    def uri(self, name: str) -> str:
        return storage.join(self.options.run_uri, name)

    @contextmanager
    def stage(
        self, name: str, total: int | None = None, done: Callable[[], int] | None = None
    ) -> Iterator[None]:
        with self.timer.stage(name), self.progress.stage(name, total, done):
            yield


def execute(spark: SparkSession, prepared: Prepared, progress: Progress) -> dict[str, Any]:
    """Run every stage and write the outputs; returns the `_COMPLETED.json` payload.

    The input is listed before anything under `<output>/<run_id>/` is touched: an input with no images
    raises InputError and leaves an earlier run of that id as it was. After that, the run id's folder is
    replaced, and any failure leaves `_FAILED.json` beside whatever was written so far.
    """
    options = prepared.options
    started_at = datetime.now(UTC)
    run = _Run(spark, prepared, progress, StageTimer())
    replaced = False
    try:
        with ExitStack() as listed_input:
            with run.stage("read"):
                slots = task_slots(spark)
                # Listed once by the executors, cached there for the counts, the split and featurize.
                listed = listed_input.enter_context(_cached(list_input(spark, options.input, slots)))
                files, images = catalog(listed, options.input, options.test_fraction, options.seed)
                listing = summarize(files)
            if listing.images_found == 0:
                raise InputError(
                    f"no .jpg, .jpeg or .png file under {options.input} ({listing.files_found} other "
                    "files): put images in one sub-folder per class"
                )
            storage.delete_tree(options.run_uri)  # re-running a run id replaces that run, never mixes two
            replaced = True
            tasks = featurize_tasks(listing.images_found, slots)
            log.info(
                "input: %d files, %d images; featurize in %d tasks",
                listing.files_found,
                listing.images_found,
                tasks,
            )
            # Dealt by image id: should a lost block of the listing be listed again, every image still
            # goes to the task it went to before (round-robin would follow the listing's order).
            dealt = images.repartition(tasks, "image_id")
            return _execute(run, dealt, listing, started_at, listed_input)
    except InputError:
        raise
    except Exception as error:
        log.exception("run %s failed in stage %s", options.run_id, run.timer.current)
        name, message = error_summary(error)
        _record_failure(
            run,
            replaced,
            {
                "status": "FAILED",
                "run_id": options.run_id,
                "output": options.run_uri,
                "finished_at": datetime.now(UTC).isoformat(),
                "stage": run.timer.current,
                "error": name,
                "message": message,
                "traceback": traceback.format_exc(limit=8)[-20_000:],
            },
        )
        raise RunFailed(f"run {options.run_id} failed in stage {run.timer.current}: {message}") from error


def _record_failure(run: _Run, replaced: bool, failure: dict[str, Any]) -> None:
    """Write `_FAILED.json`; if even that fails, the log (and the exit status) still say so."""
    try:
        if not replaced:
            storage.delete_tree(run.options.run_uri)
        storage.write_json(run.uri(FAILED_FLAG), failure)
    except Exception:
        log.exception("could not write %s", run.uri(FAILED_FLAG))


_JAVA_EXCEPTION = re.compile(r"^(?:Caused by: )?(?:[\w$]+\.)*(\w+(?:Error|Exception)): (.+)$")


def _python_exception_lines(text: str) -> list[str]:
    """The `Name: message` line that ends each Python traceback embedded in the text."""
    lines, found = text.splitlines(), []
    for index, line in enumerate(lines):
        if line.rstrip().endswith("Traceback (most recent call last):"):
            # Frames and source lines are indented; the first line that is not is the exception.
            end = next((c for c in lines[index + 1 :] if c and not c[0].isspace()), "")
            if ": " in end:
                found.append(end)
    return found


def error_summary(error: BaseException) -> tuple[str, str]:
    """(name, one-line message) a person can act on, also for errors raised inside Spark or its workers.

    A failure in a Python worker reaches the driver as a Java exception wrapping the worker's traceback,
    whose last line says what went wrong; a JVM failure's own `SomeException: message` line comes next.
    """
    text = str(error).strip()
    if isinstance(error, Py4JError | PySparkException):
        python = _python_exception_lines(text)
        if python:
            name, message = python[-1].split(": ", 1)
            return name.rsplit(".", 1)[-1], message.strip()[:1000]
        java = [m for line in text.splitlines() if (m := _JAVA_EXCEPTION.match(line.strip()))]
        if java:
            return java[-1].group(1), java[-1].group(2)[:1000]
    return type(error).__name__, (text.splitlines()[0] if text else type(error).__name__)[:1000]


def _execute(
    run: _Run, images: DataFrame, listing: CatalogSummary, started_at: datetime, listed_input: ExitStack
) -> dict[str, Any]:
    spark, options, prepared = run.spark, run.options, run.prepared
    sc = spark.sparkContext
    sc.addFile(str(prepared.model.path))
    # One inference thread per CPU Spark gives a task: tasks x threads = the executor's cores.
    threads = int(sc.getConf().get("spark.task.cpus", "1"))
    spec = EngineSpec(options.engine, prepared.model.path.name, threads)
    processed, through_model = sc.accumulator(0), sc.accumulator(0)

    staging = run.uri("featurize-staging")  # not "_...": Spark ignores such paths
    with (
        run.stage("featurize", total=listing.images_found, done=lambda: processed.value),
        arrow_batches(spark, arrow_rows(options.batch_size)),
    ):
        featurized = featurize(images, spec, options.batch_size, processed, through_model)
        write_parquet(featurized, staging)
    listed_input.close()

    # Persisted twice: written to features/ for the user, and cached as it is written (memory, spilling
    # to disk) as the vectors Spark ML reads, for fit's passes (indexer, scaler, PCA, LR), evaluate and
    # the projection: the model's output is decoded once, and converted to vectors once. A lost cached
    # block is recomputed from the staging Parquet, which is kept until the cache is released. Released
    # whatever happens.
    staged = read_parquet(spark, staging, featurized.schema)
    usable = staged.where(F.col("error").isNull()).drop("error")
    try:
        with _cached(as_model_input(usable).drop("features")) as vectors:
            with run.stage("persist"):
                write_parquet(as_features(vectors), run.uri("features"))
                rejected_rows = write_single_csv(
                    staged.where(F.col("error").isNotNull()).select("path", F.col("error").alias("reason")),
                    run.uri("rejected.csv"),
                    order_by="path",
                )
            completed = _model_stages(run, vectors, listing, rejected_rows, through_model.value, started_at)
    finally:
        storage.delete_tree(staging)
    storage.write_json(run.uri(COMPLETED_FLAG), completed)  # last: the run's outputs are all in place
    return completed


def _model_stages(
    run: _Run,
    vectors: DataFrame,
    listing: CatalogSummary,
    rejected_rows: int,
    through_model: int,
    started_at: datetime,
) -> dict[str, Any]:
    """Fit, evaluate and write from the cached vectors; returns the `_COMPLETED.json` payload."""
    spark, options = run.spark, run.options
    labelled = vectors.where(F.col("label").isNotNull())
    with ThreadPoolExecutor(1, thread_name_prefix="model-writer") as writer:
        with run.stage("fit"):
            train = labelled.where(F.col("split") == "train")
            k = choose_k(train, options.pca_variance) if options.pca_variance else options.pca_k
            model = fit(train, k, options.classify_on)
            # Saved while evaluate and the projection run: a chain of small Spark jobs whose time goes
            # mostly to commits and round trips (S3 on EMR), not to the cores they leave idle.
            model_uri = storage.spark_uri(run.uri("model"))
            saved = writer.submit(inheritable_thread_target(model.write().overwrite().save), model_uri)
            # Logged as it happens: if evaluate or the projection fails first, theirs is the run's error.
            saved.add_done_callback(partial(_log_failure, f"could not save the model to {model_uri}"))

        with run.stage("evaluate"):
            metrics = evaluate(model, labelled)

        with run.stage("write"):
            projected = pca_projection(model, vectors, k)
            write_parquet(projected, run.uri("pca"))
            pca_rows = write_single_csv(
                read_parquet(spark, run.uri("pca"), projected.schema), run.uri("pca.csv"), order_by="image_id"
            )
            storage.write_json(run.uri("metrics.json"), metrics)
            saved.result()
            csv_rows = {"pca_csv": pca_rows, "rejected_csv": rejected_rows}
            parquet = {"features": as_features(vectors).schema, "pca": projected.schema}
            counts = _verified_counts(run, listing, metrics, through_model, parquet, csv_rows)
            manifest = _manifest(run, counts, started_at)
            storage.write_json(run.uri("manifest.json"), manifest)

    timings = run.timer.as_dict()
    storage.write_json(run.uri("timings.json"), timings)
    report = write_report(spark, options.run_uri, metrics, timings, manifest)  # shows the final timings
    return {
        "status": "COMPLETED",
        "run_id": options.run_id,
        "output": options.run_uri,
        "finished_at": datetime.now(UTC).isoformat(),
        "report": report,
        "summary": {
            "images_found": counts["images_found"],
            "images_featurized": counts["images_featurized"],
            "images_rejected": counts["images_rejected"],
            "accuracy": metrics["accuracy"],
            "weighted_f1": metrics["weighted_f1"],
            "duration_seconds": timings["total_seconds"],
        },
    }


def _log_failure(message: str, future: Future[Any]) -> None:
    if error := future.exception():
        log.error(message, exc_info=error)


@contextmanager
def _cached(frame: DataFrame) -> Iterator[DataFrame]:
    try:
        yield frame.cache()
    finally:
        try:
            frame.unpersist()
        except Py4JError:  # the JVM is gone: keep the error in flight, which says why
            log.warning("could not release a cached DataFrame", exc_info=True)


def _verified_counts(
    run: _Run,
    listing: CatalogSummary,
    metrics: dict[str, Any],
    through_model: int,
    parquet: dict[str, StructType],
    csv_rows: dict[str, int],
) -> dict[str, Any]:
    """Counts read back from the written outputs; raises unless they agree with each other and the listing.

    The CSV counts are those `write_single_csv` read from the part files it joined byte for byte.
    """
    spark = run.spark
    rows = {
        **{name: read_parquet(spark, run.uri(name), schema).count() for name, schema in parquet.items()},
        **csv_rows,
    }
    featurized, rejected = rows["features"], rows["rejected_csv"]
    problems = [
        f"{name} has {count} rows, expected {featurized}"
        for name, count in rows.items()
        if name != "rejected_csv" and count != featurized
    ]
    if featurized + rejected != listing.images_found:
        problems.append(
            f"{featurized} featurized + {rejected} rejected != {listing.images_found} images found"
        )
    if problems:
        raise OutputMismatch("outputs disagree: " + "; ".join(problems))
    return {
        "files_found": listing.files_found,
        "files_ignored": listing.files_ignored,
        "images_found": listing.images_found,
        "images_featurized": featurized,
        "images_rejected": rejected,
        "images_unlabelled": listing.images_unlabelled,
        "images_through_model": through_model,
        "train_images": metrics["train_images"],
        "test_images": metrics["test_images"],
        "classes": len(metrics["per_class"]),
        "rows": rows,
    }


def _manifest(run: _Run, counts: dict[str, Any], started_at: datetime) -> dict[str, Any]:
    prepared = run.prepared
    return {
        "run_id": run.options.run_id,
        "input": run.options.input,
        "output": run.options.run_uri,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "counts": counts,
        "options": run.options.as_dict(),
        "versions": {
            "featurizer": __version__,
            "python": platform.python_version(),
            "spark": run.spark.version,
            "pyspark": pyspark.__version__,
            "engine": engine_version(run.options.engine),
        },
        "model": prepared.model.as_dict(),
    }


def summary_line(completed: dict[str, Any]) -> str:
    s = completed["summary"]
    return (
        f"{s['images_featurized']:,} images featurized, {s['images_rejected']:,} rejected "
        f"(of {s['images_found']:,} found); accuracy {s['accuracy']:.3f}, "
        f"weighted F1 {s['weighted_f1']:.3f}; "
        f"{s['duration_seconds']:.1f} s; outputs in {completed['output']}"
    )


def main(argv: Sequence[str] | None = None, local: bool = False, prog: str = "spark/main.py") -> int:
    """Parse, prepare, run. Exit status: 0 done, 1 the run failed (`_FAILED.json`), 2 bad input."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = parse_options(argv, prog=prog)
    progress = Progress()
    try:
        if local and any(storage.is_s3(uri) for uri in (options.input, options.output)):
            require_s3a()
        prepared = prepare(options)
    except (InputError, WeightsUnavailable, S3ConnectorMissing) as error:
        progress.say(f"error: {error}")
        return 2
    spark = local_session() if local else submitted_session()
    try:
        completed = execute(spark, prepared, progress)
    except InputError as error:
        progress.say(f"error: {error}")
        return 2
    except RunFailed as error:
        progress.say(f"error: {error}\nrun failed; details in {options.run_uri}{FAILED_FLAG}")
        return 1
    progress.say(summary_line(completed))
    return 0
