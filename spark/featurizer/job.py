"""The featurization job: read -> decode -> featurize -> persist -> fit -> evaluate -> write -> flag.

Run on EMR Serverless (or any Spark) with:

    spark-submit spark/main.py --input s3://BUCKET/inbox/DATASET/ --output s3://BUCKET/runs/DATASET/ \
        --run-id RUN_ID [--engine onnx|tensorflow] [--model PATH|s3://...onnx]
        [--weights imagenet|PATH|s3://...h5] [--pca-k 10]

and locally with `featurizer run` (same options), which starts Spark in local mode first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

from py4j.protocol import Py4JError
from pyspark import Accumulator, StorageLevel, inheritable_thread_target
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurizer import storage
from featurizer.artifact import ModelArtifact, model_for
from featurizer.catalog import CatalogSummary, catalog, summarize
from featurizer.engines import EngineSpec
from featurizer.evaluate import evaluate
from featurizer.failures import FAILED_FLAG, failure_record
from featurizer.featurize import FEATURIZED_COLUMNS, FEATURIZED_SCHEMA, featurize
from featurizer.listing import list_input
from featurizer.manifest import (
    COMPLETED_FLAG,
    completion_record,
    fit_counts,
    manifest,
    summary_line,
    verified_counts,
)
from featurizer.model import as_features, as_model_input, components, fit
from featurizer.options import REFIT_KEEPS, JobOptions, parse_options
from featurizer.outputs import read_parquet, scored, write_parquet, write_single_csv
from featurizer.partitioning import arrow_batches, arrow_rows, featurize_tasks, task_slots
from featurizer.predict import IncompatibleModel, as_csv, load_pipeline, prediction_metrics, predictions
from featurizer.predict import settled as predict_settled
from featurizer.progress import PROGRESS_FILE, Progress, ProgressFile
from featurizer.refit import copy_outputs, listing_of
from featurizer.report import write_report
from featurizer.selftest import AccessCheck, AccessCheckFailed, access_checks, worker_environments
from featurizer.selftest import report as self_test_report
from featurizer.session import S3ConnectorMissing, local_session, require_s3a, submitted_session
from featurizer.sources import NotASourceRun, completed_manifest, model_of
from featurizer.store import KEY as STORE_KEY
from featurizer.store import Reuse, Table, one_per_key
from featurizer.stratified import class_counts, proportional_quotas, stratified_sample
from featurizer.timings import StageTimer
from featurizer.weights import WeightsUnavailable

log = logging.getLogger("featurizer")
FIT_ROWS_PER_PARTITION = 4096  # 40 MB of Spark ML's doubles at 1280 features


class InputError(ValueError):
    """The input location cannot be used; nothing was started."""


class RunFailed(RuntimeError):
    """The run stopped after it started; `_FAILED.json` says where and why."""


@dataclass(frozen=True)
class Prepared:
    """Everything settled before Spark starts: the options, the model file the workers load, and (for a
    self-test) what the job's role was allowed and refused."""

    options: JobOptions
    model: ModelArtifact
    access: tuple[AccessCheck, ...] = ()
    source: dict[str, Any] | None = None  # a refit's or predict run's: the manifest of the run it reads


def prepare(options: JobOptions) -> Prepared:
    """Check the input and get the model, so that a bad argument stops the job before any Spark work."""
    if options.from_run:
        return _prepare_refit(options)
    _check_input(options)
    if options.model_run:
        return _prepare_predict(options)
    model = model_for(options)
    try:
        access = tuple(access_checks(options)) if options.self_test else ()
    except AccessCheckFailed as error:
        raise InputError(str(error)) from error
    return Prepared(options, model, access)


def _check_input(options: JobOptions) -> None:
    """InputError unless --input is a folder with files in it."""
    try:
        present = storage.folder_has_files(options.input)
    except storage.AccessDenied as error:
        raise InputError(f"--input {options.input} cannot be listed: {error}") from error
    except Exception as error:  # botocore: credentials, endpoint
        raise InputError(f"--input {options.input} cannot be read: {error}") from error
    if not present:
        raise InputError(
            f"--input {options.input} does not exist or is empty: point it at a folder of images"
        )


def _prepare_refit(options: JobOptions) -> Prepared:
    """A refit's: the completed run it reads, its input (unless --input says) and its model."""
    try:
        source = completed_manifest(str(options.from_run), options.run_uri, "--from-run")
    except NotASourceRun as error:
        raise InputError(str(error)) from error
    model = model_of(source)
    # Its split and features are the source's; a manifest from before an option existed has its default.
    kept = {name: source["options"][name] for name in REFIT_KEEPS if name in source["options"]}
    settled = replace(
        options, **{**kept, "input": options.input or source["input"], "precision": model.precision}
    )
    return Prepared(settled, model, source=source)


def _prepare_predict(options: JobOptions) -> Prepared:
    """A predict run's: the completed run whose pipeline it applies, and a model whose features are that
    run's."""
    try:
        trained = completed_manifest(str(options.model_run), options.run_uri, "--model-run")
        settled, model = predict_settled(options, trained)
    except (NotASourceRun, IncompatibleModel) as error:
        raise InputError(str(error)) from error
    return Prepared(settled, model, source=trained)


@dataclass
class Run:
    """One run as it goes: its settings, clock, progress and counters, and whether its folder has been
    replaced yet."""

    spark: SparkSession
    prepared: Prepared
    progress: Progress
    timer: StageTimer = field(default_factory=StageTimer)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    replaced: bool = False
    progress_file: ProgressFile | None = None  # once the run's folder is replaced
    reuse: Reuse = field(default_factory=Reuse)

    @cached_property
    def images_processed(self) -> Accumulator[int]:
        return self.spark.sparkContext.accumulator(0)

    @cached_property
    def images_through_model(self) -> Accumulator[int]:
        return self.spark.sparkContext.accumulator(0)

    @property
    def options(self) -> JobOptions:
        return self.prepared.options

    @property
    def staging(self) -> str:
        return self.uri("featurize-staging")  # not "_...": Spark ignores such paths

    def uri(self, name: str) -> str:
        return storage.join(self.options.run_uri, name)

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[None]:
        """Time a step and show it; with `total`, its images done so far too. Once the run's folder is
        its own (replaced), progress.json says the same."""
        counted = self.images_processed if total is not None else None
        done = (lambda: counted.value) if counted is not None else None
        published = self.progress_file
        if published is not None:
            published.publish(name, 0 if total is not None else None, total, start=True)
        tick = None if published is None else (lambda count: published.publish(name, count, total))
        with self.timer.stage(name), self.progress.stage(name, total, done, tick):
            yield

    def replace_outputs(self) -> None:
        """Empty the run's folder: re-running a run id replaces that run, never mixes two."""
        storage.delete_tree(self.options.run_uri)
        self.replaced = True
        self.progress_file = ProgressFile(self.uri(PROGRESS_FILE))

    def record_failure(self, error: BaseException) -> dict[str, Any]:
        """`_FAILED.json` beside what was written so far (if even that fails, the log still says why);
        returns its payload."""
        failure = failure_record(self.options, self.timer.current, error)
        try:
            if not self.replaced:
                self.replace_outputs()
            storage.write_json(self.uri(FAILED_FLAG), failure)
        except Exception:
            log.exception("could not write %s", self.uri(FAILED_FLAG))
        return failure


def execute(spark: SparkSession, prepared: Prepared, progress: Progress) -> dict[str, Any]:
    """Run the eight steps; returns the `_COMPLETED.json` payload.

    The input is listed before anything under `<output>/<run_id>/` is touched: an input with no images
    raises InputError and leaves an earlier run of that id as it was. After that, the run id's folder is
    replaced, and any failure leaves `_FAILED.json` beside whatever was written so far.
    """
    run = Run(spark, prepared, progress)
    options = run.options
    try:
        if prepared.source is not None and options.from_run:
            return _refit(run, prepared.source)
        slots = task_slots(spark)
        with ExitStack() as listing_kept:
            with run.stage("read"):
                listing, images = listing_kept.enter_context(read_input(spark, options, slots))
                known = listing_kept.enter_context(_known(run, images, listing.images_found))
            run.replace_outputs()
            try:
                with run.stage("featurize", total=known.new_images):
                    staged = _featurize_new(run, known, slots)
                with run.stage("persist"):
                    rejected_rows = _persist(run, staged)
            finally:
                storage.delete_tree(run.staging)
        finish = _predict if options.model_run else after_persist
        return flag(run, *finish(run, listing, rejected_rows))
    except InputError:
        raise
    except Exception as error:
        log.exception("run %s failed in stage %s", options.run_id, run.timer.current)
        failure = run.record_failure(error)
        raise RunFailed(
            f"run {options.run_id} failed in stage {failure['stage']}: {failure['message']}"
        ) from error


def _refit(run: Run, source: dict[str, Any]) -> dict[str, Any]:
    """A run whose featurized images are another run's (`--from-run`): no image read, no CNN; its
    persist copies the source's features/ and rejected.csv as they are."""
    run.replace_outputs()
    with run.stage("persist"):
        rejected_rows = copy_outputs(str(run.options.from_run), run.options.run_uri, source)
    return flag(run, *after_persist(run, listing_of(source), rejected_rows))


def after_featurization(
    run: Run, staged: DataFrame, listing: CatalogSummary
) -> tuple[dict[str, Any], dict[str, Any]]:
    """persist -> fit -> evaluate -> write, from the featurized images as staged; (metrics, manifest).
    bench/growth.py runs these stages alone, on features made up for its sizes."""
    with run.stage("persist"):
        rejected_rows = _persist(run, staged)
    return after_persist(run, listing, rejected_rows)


def after_persist(
    run: Run, listing: CatalogSummary, rejected_rows: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """fit -> evaluate -> write, from the run's features/ as persist wrote them; (metrics, manifest)."""
    spark = run.spark
    features = read_parquet(spark, run.uri("features"), _features_schema(spark))
    vectors = as_model_input(features).drop("features")
    with ThreadPoolExecutor(1, thread_name_prefix="model-writer") as writer:
        with run.stage("fit"):
            model, fitted = _fit(features, run.options)
            saved = _save_in_background(writer, model, run.uri("model"))
        with run.stage("evaluate"):
            scores = _score(run, model, vectors)
            metrics = evaluate(model, scores, fitted)
        with run.stage("write"):
            described = _write(run, features, scores, metrics, listing, rejected_rows, saved)
    return metrics, described


@contextmanager
def read_input(
    spark: SparkSession, options: JobOptions, slots: int
) -> Iterator[tuple[CatalogSummary, DataFrame]]:
    """The read stage: the listing's counts and its images, listed once by the executors and kept on
    their disks (a path and a size per file, out of the memory the fit's sample needs) for the counts,
    the split and featurize, until the block ends."""
    with _cached(list_input(spark, options.input, slots), StorageLevel.DISK_ONLY) as listed:
        yield _read(listed, options)


def _read(listed: DataFrame, options: JobOptions) -> tuple[CatalogSummary, DataFrame]:
    """The listing's counts and its images with their ids, labels and splits; InputError without images."""
    files, images = catalog(listed, options.input, options.test_fraction, options.seed)
    listing = summarize(files)
    if listing.images_found == 0:
        raise InputError(
            f"no .jpg, .jpeg or .png file under {options.input} ({listing.files_found} other "
            "files): put images in one sub-folder per class"
        )
    return listing, images


@dataclass(frozen=True)
class Known:
    """The listed images split by the feature store (`table` None without one): those it holds (`reused`,
    as staged rows), the rest to featurize and their count, and how many images it holds that the input
    no longer lists."""

    table: Table | None
    new: DataFrame
    new_images: int
    reused: DataFrame | None
    removed: int


@contextmanager
def _known(run: Run, images: DataFrame, count: int) -> Iterator[Known]:
    """The read stage's last step: the listing joined against the feature store's keys (kept on the
    executors' disks with the listing, for the counts and featurize), then the stored rows of the images
    it holds."""
    store = run.options.store_uri
    table = Table.for_model(store, run.prepared.model.sha256) if store else None
    stored = table.read(run.spark, table.live_commits()) if table else None
    if table is None or stored is None:
        yield Known(table, images, count, None, 0)
        return
    keys = stored.select(*STORE_KEY).distinct().withColumn("_known", F.lit(True))
    with _cached(images.join(keys, list(STORE_KEY), "left"), StorageLevel.DISK_ONLY) as flagged:
        new = flagged.where(F.col("_known").isNull()).drop("_known")
        listed = flagged.where(F.col("_known")).select(*STORE_KEY, "path", "label", "split")
        reused = one_per_key(listed.join(stored, list(STORE_KEY)))
        removed = keys.select("image_id").distinct().join(images.select("image_id"), "image_id", "left_anti")
        yield Known(table, new, new.count(), reused.select(*FEATURIZED_COLUMNS), removed.count())


def _featurize_new(run: Run, known: Known, slots: int) -> DataFrame:
    """The featurize stage: the images the store lacks featurized into a new part of the store, committed
    as soon as it is written (into the staging Parquet, without a store); returns every listed image's
    row, the reused ones as the store holds them (read by persist, in the one pass that writes them)."""
    spark, table = run.spark, known.table
    schema = spark.createDataFrame([], FEATURIZED_SCHEMA).schema
    new = spark.createDataFrame([], schema)
    if known.new_images and table is None:
        new = _decode_and_featurize(run, known.new, known.new_images, slots, partial(_stage, run))
    elif known.new_images and table is not None:
        commit = partial(table.add, run_id=run.options.run_id)
        featurized = _decode_and_featurize(run, known.new, known.new_images, slots, commit, STORE_KEY[1:])
        new = featurized.select(*FEATURIZED_COLUMNS)
        _maintain(table, spark, run.options.run_id)
    run.reuse = Reuse(new.where(F.col("error").isNull()).count(), known.removed)
    return new if known.reused is None else known.reused.unionByName(new)


def _maintain(table: Table, spark: SparkSession, run_id: str) -> None:
    """Compact the store's table if it is due, and delete what no reader needs; a failure is only logged:
    the table stays as consistent as before, and the next run tries again."""
    try:
        table.compact(spark, run_id)
        table.vacuum(datetime.now(UTC))
    except Exception:
        log.warning("could not compact or vacuum the feature store %s", table.uri, exc_info=True)


def _stage(run: Run, featurized: DataFrame) -> DataFrame:
    """The featurized images written to the staging Parquet; returns them as read back."""
    write_parquet(featurized, run.staging)
    return read_parquet(run.spark, run.staging, featurized.schema)


def _decode_and_featurize(
    run: Run,
    images: DataFrame,
    count: int,
    slots: int,
    write: Callable[[DataFrame], DataFrame],
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """Every image read, decoded and inferred in one pass in the Python workers, as `write` writes them
    (and returns them, read back). Images are dealt into tasks by id: should a lost block of the listing
    be listed again, every image still goes to the task it went to before."""
    spark, options, model = run.spark, run.options, run.prepared.model
    tasks = featurize_tasks(count, slots)
    log.info("featurize %d images in %d tasks", count, tasks)
    spark.sparkContext.addFile(str(model.path))
    # One inference thread per CPU Spark gives a task: tasks x threads = the executor's cores.
    threads = int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))
    spec = EngineSpec(options.engine, model.path.name, threads)
    with arrow_batches(spark, arrow_rows(options.batch_size)):
        featurized = featurize(
            images.repartition(tasks, "image_id"),
            spec,
            options.batch_size,
            run.images_processed,
            run.images_through_model,
            max_image_bytes=options.max_image_bytes,
            max_image_pixels=options.max_image_pixels,
            keep=keep,
        )
        return write(featurized)


def _features(staged: DataFrame) -> DataFrame:
    """features/ as persist writes it from the staged rows: the images featurized without error, their
    features as the model gave them (array<float>, declared non-null, as_features's)."""
    featurized = staged.where(F.col("error").isNull()).drop("error")
    return as_features(as_model_input(featurized).drop("features"))


def _features_schema(spark: SparkSession) -> StructType:
    return _features(spark.createDataFrame([], FEATURIZED_SCHEMA)).schema


def _persist(run: Run, staged: DataFrame) -> int:
    """features/ (the model's output, bit for bit) and rejected.csv, each in one streaming pass over the
    staged rows (nothing in proportion to the input is cached); returns the rejected count."""
    write_parquet(_features(staged), run.uri("features"))
    rejected = staged.where(F.col("error").isNotNull()).select("path", F.col("error").alias("reason"))
    return write_single_csv(rejected, run.uri("rejected.csv"), order_by="path")


def _fit(features: DataFrame, options: JobOptions) -> tuple[PipelineModel, int]:
    """The pipeline, and the images it was fitted on: a stratified sample of the labelled training images
    of at most `--fit-max-images` (and `--fit-max-per-class`), cached while the pipeline's stages pass
    over it. The sample is drawn once and kept on the executors' disks as the model's floats:
    LogisticRegression caches its own blocks of doubles, and needs the memory."""
    train = features.where(F.col("label").isNotNull() & (F.col("split") == "train"))
    counts = class_counts(train.select("label"), "label")
    quotas = proportional_quotas(counts, options.fit_max_images, options.fit_max_per_class)
    sample = stratified_sample(train, "label", "image_id", quotas, counts, options.seed)
    # Ranked by class, the sample would sit in a few partitions as large as its classes: dealt into
    # partitions of FIT_ROWS_PER_PARTITION, each task (and the copies LogisticRegression keeps) is small.
    parts = max(task_slots(features.sparkSession), math.ceil(sum(quotas.values()) / FIT_ROWS_PER_PARTITION))
    with _cached(sample.repartition(parts), StorageLevel.DISK_ONLY) as kept:
        fitted = as_model_input(kept).drop("features")
        o = options
        model = fit(fitted, quotas, o.pca_k, o.pca_variance, o.classify_on, o.reg_param, o.max_iter)
        return model, kept.count()


def _score(run: Run, model: PipelineModel, vectors: DataFrame) -> DataFrame:
    """pca/: every image predicted and projected in one pass; returns it as read back."""
    projected = scored(model, vectors, components(model))
    write_parquet(projected, run.uri("pca"))
    return read_parquet(run.spark, run.uri("pca"), projected.schema)


def _write(
    run: Run,
    features: DataFrame,
    scores: DataFrame,
    metrics: dict[str, Any],
    listing: CatalogSummary,
    rejected_rows: int,
    saved: Future[Any],
) -> dict[str, Any]:
    """pca.csv, metrics.json, the saved model, and manifest.json with the counts read back from all of
    them; returns the manifest."""
    spark = run.spark
    pca_rows = write_single_csv(scores, run.uri("pca.csv"), order_by="image_id")
    storage.write_json(run.uri("metrics.json"), metrics)
    saved.result()
    checked = None
    if run.options.self_test:
        checked = self_test_report(list(run.prepared.access), worker_environments(spark, task_slots(spark)))
    parquet = {"features": features.schema, "pca": scores.schema}
    csv_rows = {"pca_csv": pca_rows, "rejected_csv": rejected_rows}
    return _write_manifest(run, listing, parquet, csv_rows, fit_counts(metrics), checked)


def _write_manifest(
    run: Run,
    listing: CatalogSummary,
    parquet: dict[str, StructType],
    csv_rows: dict[str, int],
    more_counts: dict[str, Any] | None = None,
    self_test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """manifest.json, with the counts read back from the outputs named (and `more_counts`); returns it."""
    counts = verified_counts(
        run.spark, run.options.run_uri, listing, run.images_through_model.value, run.reuse, parquet, csv_rows
    )
    model, started = run.prepared.model, run.started_at
    described = manifest(
        run.spark, run.options, model, counts | (more_counts or {}), started, datetime.now(UTC), self_test
    )
    storage.write_json(run.uri("manifest.json"), described)
    return described


def _predict(run: Run, listing: CatalogSummary, rejected_rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """predict -> write, from the run's features/ as persist wrote them: every image classified by the
    trained run's pipeline into predictions/ and predictions.csv; (metrics, manifest)."""
    spark, model_run = run.spark, str(run.options.model_run)
    features = read_parquet(spark, run.uri("features"), _features_schema(spark))
    with run.stage("predict"):
        pipeline = load_pipeline(model_run)
        predicted = predictions(pipeline, features)
        write_parquet(predicted, run.uri("predictions"))
        predicted = read_parquet(spark, run.uri("predictions"), predicted.schema)
        metrics = prediction_metrics(predicted, pipeline, model_run)
    with run.stage("write"):
        csv_rows = write_single_csv(as_csv(predicted), run.uri("predictions.csv"), order_by="image_id")
        storage.write_json(run.uri("metrics.json"), metrics)
        parquet = {"features": features.schema, "predictions": predicted.schema}
        written = {"predictions_csv": csv_rows, "rejected_csv": rejected_rows}
        described = _write_manifest(run, listing, parquet, written)
    return metrics, described


def flag(run: Run, metrics: dict[str, Any], described: dict[str, Any]) -> dict[str, Any]:
    """timings.json, the report that shows it, then `_COMPLETED.json`, last of all; returns the flag."""
    timings = run.timer.as_dict()
    storage.write_json(run.uri("timings.json"), timings)
    report = write_report(run.spark, run.options.run_uri, metrics, timings, described)
    completed = completion_record(
        run.options, described["counts"], metrics, timings, report, datetime.now(UTC)
    )
    storage.write_json(run.uri(COMPLETED_FLAG), completed)
    return completed


def _save_in_background(writer: ThreadPoolExecutor, model: PipelineModel, uri: str) -> Future[Any]:
    """Save the model while evaluate and the projection run: a chain of small Spark jobs whose time goes
    mostly to commits and round trips (S3 on EMR), not to the cores they leave idle. Its failure is
    logged as it happens: if evaluate or the projection fails first, theirs is the run's error."""
    target = storage.spark_uri(uri)
    saved = writer.submit(inheritable_thread_target(model.write().overwrite().save), target)
    saved.add_done_callback(partial(_log_failure, f"could not save the model to {target}"))
    return saved


def _log_failure(message: str, future: Future[Any]) -> None:
    if error := future.exception():
        log.error(message, exc_info=error)


@contextmanager
def _cached(
    frame: DataFrame, level: StorageLevel = StorageLevel.MEMORY_AND_DISK_DESER
) -> Iterator[DataFrame]:
    """`frame`, cached by Spark (by default as `cache()` does) for as long as the block runs, released
    whatever happens."""
    try:
        yield frame.persist(level)
    finally:
        try:
            frame.unpersist()
        except Py4JError:  # the JVM is gone: keep the error in flight, which says why
            log.warning("could not release a cached DataFrame", exc_info=True)


def main(argv: Sequence[str] | None = None, local: bool = False, prog: str = "spark/main.py") -> int:
    """Parse, prepare, run. Exit status: 0 done, 1 the run failed (`_FAILED.json`), 2 bad input."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = parse_options(argv, prog=prog)
    progress = Progress()
    try:
        if local and any(
            storage.is_s3(uri) for uri in (options.input, options.output, options.model_run or "")
        ):
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
