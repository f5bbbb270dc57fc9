"""The whole job on real Spark (local mode) and the real weights, on generated images."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from featurizer import job
from featurizer.failures import FAILED_FLAG
from featurizer.job import RunFailed, execute, main, prepare
from featurizer.manifest import COMPLETED_FLAG
from featurizer.model import as_model_input, class_labels
from featurizer.options import FIT_MAX_PER_CLASS, WEIGHTS_ENV, JobOptions
from featurizer.progress import PROGRESS_FILE, Progress
from featurizer.samples import generate
from featurizer.stratified import proportional_quotas
from tests.conftest import WITH_TOP
from tests.images import bad_files, png_bomb
from tests.paths import ROOT

IMAGES_FOUND, REJECTED, FILES_FOUND = 75, 6, 77  # see the `sample_images` fixture


def run(spark: SparkSession, input_dir: Path, output: Path, run_id: str, weights: Path, **options) -> dict:
    job = JobOptions(input=str(input_dir), output=str(output), run_id=run_id, weights=str(weights), **options)
    return execute(spark, prepare(job), Progress(io.StringIO()))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def submitted_run(sample_images: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The entry point EMR Serverless runs, through spark-submit, with the tensorflow engine."""
    output = tmp_path_factory.mktemp("submitted")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, WEIGHTS_ENV: str(weights)}
    spark_submit = Path(sys.executable).parent / "spark-submit"
    result = subprocess.run(
        [
            str(spark_submit),
            "--master",
            "local[2]",
            str(ROOT / "spark" / "main.py"),
            "--input",
            str(sample_images),
            "--output",
            str(output),
            "--run-id",
            "tf-run",
            "--engine",
            "tensorflow",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "69 images featurized, 6 rejected" in result.stdout  # spark-submit merges Python's stderr into it
    return output / "tf-run"


def test_manifest_counts_match_every_output(spark: SparkSession, onnx_run: Path) -> None:
    counts = read_json(onnx_run / "manifest.json")["counts"]
    featurized = IMAGES_FOUND - REJECTED

    assert counts["files_found"] == FILES_FOUND and counts["files_ignored"] == 2
    assert counts["images_found"] == IMAGES_FOUND == counts["images_featurized"] + counts["images_rejected"]
    assert counts["images_featurized"] == featurized and counts["images_unlabelled"] == 1
    assert counts["images_through_model"] == featurized  # the CNN ran once per image, no more
    assert counts["rows"] == {
        "features": featurized,
        "pca": featurized,
        "pca_csv": featurized,
        "rejected_csv": REJECTED,
    }
    assert spark.read.parquet(str(onnx_run / "features")).count() == featurized
    assert spark.read.parquet(str(onnx_run / "pca")).count() == featurized
    assert len(pd.read_csv(onnx_run / "pca.csv")) == featurized
    assert len(pd.read_csv(onnx_run / "rejected.csv")) == REJECTED
    assert counts["train_images"] + counts["test_images"] == featurized - 1
    assert counts["images_fitted"] == counts["train_images"]  # under the cap: all of them


def test_features_have_the_documented_schema(
    spark: SparkSession, onnx_run: Path, sample_images: Path
) -> None:
    features = spark.read.parquet(str(onnx_run / "features"))

    assert [(f.name, f.dataType.simpleString()) for f in features.schema] == [
        ("image_id", "string"),
        ("path", "string"),
        ("label", "string"),
        ("split", "string"),
        ("features", "array<float>"),
    ]
    assert features.select(F.size("features").alias("n")).distinct().collect()[0]["n"] == 1280
    written = pq.read_schema(next((onnx_run / "features").glob("*.parquet")))  # as pyarrow and pandas see it
    assert str(written.field("features")) == "pyarrow.Field<features: list<element: float not null> not null>"
    labels = {r["label"] for r in features.select("label").distinct().collect()}
    assert labels == {"Apple Crimson Snow", "Banana", "Blueberry", "Kiwi, golden", "Pêche (jaune)", None}


def test_pca_csv_has_one_row_per_featurized_image(spark: SparkSession, onnx_run: Path) -> None:
    csv = pd.read_csv(onnx_run / "pca.csv", keep_default_na=False)
    ids = {r["image_id"] for r in spark.read.parquet(str(onnx_run / "features")).select("image_id").collect()}

    assert list(csv.columns) == ["image_id", "label", "split", "predicted_label"] + [
        f"pca_{i}" for i in range(1, 11)
    ]
    assert set(csv["image_id"]) == ids and csv["image_id"].is_unique
    assert "Kiwi, golden" in set(csv["label"]) and "Pêche (jaune)" in set(csv["label"])
    assert csv[[f"pca_{i}" for i in range(1, 11)]].notna().all().all()


def test_rejected_files_are_listed_with_their_reason(onnx_run: Path) -> None:
    rejected = pd.read_csv(onnx_run / "rejected.csv")

    reasons = {
        path.rsplit("/", 1)[-1]: reason
        for path, reason in zip(rejected["path"], rejected["reason"], strict=True)
    }
    assert set(reasons) == set(bad_files())
    for name, (_, reason) in bad_files().items():
        assert reasons[name].startswith(reason)


def test_completion_flag_is_written_last_and_summarizes_the_run(onnx_run: Path) -> None:
    flag = onnx_run / COMPLETED_FLAG
    others = [p for p in onnx_run.rglob("*") if p.is_file() and p != flag]
    completed, metrics = read_json(flag), read_json(onnx_run / "metrics.json")

    assert max(p.stat().st_mtime_ns for p in others) <= flag.stat().st_mtime_ns
    assert not (onnx_run / FAILED_FLAG).exists() and not (onnx_run / "featurize-staging").exists()
    assert completed["status"] == "COMPLETED"
    assert completed["summary"]["images_featurized"] == IMAGES_FOUND - REJECTED
    assert completed["summary"]["accuracy"] == metrics["accuracy"]


def test_progress_file_names_the_last_stage_the_run_began(onnx_run: Path) -> None:
    """GET /runs/<id> shows progress.json while a run goes; the last write is the write stage's start."""
    progress = read_json(onnx_run / PROGRESS_FILE)

    assert (progress["stage"], progress["images_done"], progress["images_total"]) == ("write", None, None)


def test_timings_are_measured_per_stage(onnx_run: Path) -> None:
    timings = read_json(onnx_run / "timings.json")

    assert list(timings["stages"]) == ["read", "featurize", "persist", "fit", "evaluate", "write"]
    assert all(seconds > 0 for seconds in timings["stages"].values())
    assert sum(timings["stages"].values()) <= timings["total_seconds"]


def test_metrics_cover_every_class_and_the_pca(onnx_run: Path) -> None:
    metrics = read_json(onnx_run / "metrics.json")

    assert metrics["accuracy"] >= 0.9  # five visually distinct classes
    assert 0.9 <= metrics["train_accuracy"] <= 1.0
    assert set(metrics["per_class"]) == {
        "Apple Crimson Snow",
        "Banana",
        "Blueberry",
        "Kiwi, golden",
        "Pêche (jaune)",
    }
    assert np.sum(metrics["confusion_matrix"]["matrix"]) == metrics["test_images"]
    assert metrics["pca"]["k"] == 10 and len(metrics["pca"]["explained_variance"]) == 10
    assert np.all(np.diff(metrics["pca"]["cumulative"]) > 0) and metrics["pca"]["cumulative"][-1] <= 1.0


def test_saved_model_loads_and_reproduces_the_test_accuracy(spark: SparkSession, onnx_run: Path) -> None:
    model = PipelineModel.load(str(onnx_run / "model"))
    features = as_model_input(spark.read.parquet(str(onnx_run / "features")))

    test = model.transform(features.where("split = 'test'")).select("label", "predicted_label").collect()

    accuracy = sum(r["label"] == r["predicted_label"] for r in test) / len(test)
    assert accuracy == pytest.approx(read_json(onnx_run / "metrics.json")["accuracy"])


def test_spark_submit_with_tensorflow_gives_the_same_ids_and_features(
    spark: SparkSession, onnx_run: Path, submitted_run: Path
) -> None:
    def features(run_dir: Path) -> dict[str, np.ndarray]:
        rows = spark.read.parquet(str(run_dir / "features")).select("image_id", "features").collect()
        return {r["image_id"]: np.asarray(r["features"]) for r in rows}

    onnx, tensorflow = features(onnx_run), features(submitted_run)

    assert set(onnx) == set(tensorflow)
    assert max(np.abs(onnx[i] - tensorflow[i]).max() for i in onnx) < 1e-3
    assert read_json(submitted_run / "manifest.json")["versions"]["engine"].startswith("tensorflow")


def test_failed_run_has_no_completion_flag_and_rerunning_its_id_replaces_it(
    spark: SparkSession,
    sample_images: Path,
    weights: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_class = tmp_path / "in put %+#é"  # roots with characters URIs escape, input and output alike
    generate(one_class, per_class=4, defects=False)
    for folder in one_class.iterdir():
        if folder.name != "Banana":
            for image in folder.iterdir():
                image.rename(one_class / "Banana" / f"{folder.name}-{image.name}")
    runs = tmp_path / "runs é #1 50%"
    argv = ["--input", str(one_class), "--output", str(runs), "--run-id", "r", "--weights", str(weights)]

    assert main(argv, local=True) == 1

    run_dir = runs / "r"
    failed = read_json(run_dir / FAILED_FLAG)
    assert (failed["stage"], failed["error"]) == ("fit", "NotEnoughData")
    assert "at least 2" in failed["message"] and "at least 2" in capsys.readouterr().err
    assert not (run_dir / COMPLETED_FLAG).exists()
    assert spark.read.parquet(str(run_dir / "features")).count() == 20  # work done so far is kept

    run(spark, sample_images, runs, "r", weights, pca_k=None, pca_variance=0.9, classify_on="pca")

    assert not (run_dir / FAILED_FLAG).exists() and (run_dir / COMPLETED_FLAG).exists()
    k = read_json(run_dir / "metrics.json")["pca"]["k"]
    assert read_json(run_dir / "metrics.json")["pca"]["cumulative"][-1] >= 0.9
    assert list(pd.read_csv(run_dir / "pca.csv").columns)[-1] == f"pca_{k}"


def test_unusable_weights_stop_before_spark_and_keep_earlier_outputs(
    sample_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = tmp_path / "runs" / "r" / COMPLETED_FLAG
    earlier.parent.mkdir(parents=True)
    earlier.write_text("{}")
    argv = [
        "--input",
        str(sample_images),
        "--output",
        str(tmp_path / "runs"),
        "--run-id",
        "r",
        "--weights",
        str(tmp_path / "missing.h5"),
    ]

    assert main(argv, local=True) == 2

    message = capsys.readouterr().err
    assert "no such file" in message and "--weights" in message and WEIGHTS_ENV in message
    assert earlier.read_text() == "{}"


def test_missing_input_is_reported_before_spark(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--input", str(tmp_path / "nowhere"), "--output", str(tmp_path), "--weights", str(weights)]

    assert main(argv, local=True) == 2
    assert "--input" in capsys.readouterr().err


def test_s3_on_local_spark_without_the_connector_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEATURIZER_S3A_JARS", str(tmp_path / "no-jars"))

    assert main(["--input", "s3://data/inbox/fruits/", "--output", str(tmp_path)], local=True) == 2
    assert "make s3a" in capsys.readouterr().err


def test_outputs_that_disagree_fail_the_run_instead_of_completing_it(
    spark: SparkSession, sample_images: Path, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv = job.write_single_csv

    def losing_rows(*args: object, **kwargs: object) -> int:
        write_csv(*args, **kwargs)
        return 1  # as if the CSV had lost rows

    monkeypatch.setattr(job, "write_single_csv", losing_rows)

    with pytest.raises(RunFailed, match="outputs disagree"):
        run(spark, sample_images, tmp_path, "r", weights)

    assert read_json(tmp_path / "r" / FAILED_FLAG)["error"] == "OutputMismatch"
    assert not (tmp_path / "r" / COMPLETED_FLAG).exists()
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()  # the failed run's rows released


def test_a_model_that_cannot_be_saved_fails_the_run_in_write_and_keeps_the_rest(
    spark: SparkSession, sample_images: Path, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FullDisk:  # the model is saved in the background while evaluate and the projection run
        def overwrite(self) -> FullDisk:
            return self

        def save(self, path: str) -> None:
            raise OSError(f"cannot write {path}: no space left on device")

    monkeypatch.setattr(PipelineModel, "write", lambda self: FullDisk())

    with pytest.raises(RunFailed, match="no space left on device"):
        run(spark, sample_images, tmp_path, "r", weights)

    failed = read_json(tmp_path / "r" / FAILED_FLAG)
    assert (failed["stage"], failed["error"]) == ("write", "OSError")
    assert spark.read.parquet(str(tmp_path / "r" / "pca")).count() == IMAGES_FOUND - REJECTED
    assert not (tmp_path / "r" / COMPLETED_FLAG).exists()
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_evaluate_failing_while_the_model_saves_fails_the_run_in_evaluate_with_the_model_saved(
    spark: SparkSession, sample_images: Path, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> dict:
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(job, "evaluate", broken)

    with pytest.raises(RunFailed, match="evaluation broke"):
        run(spark, sample_images, tmp_path, "r", weights)

    failed = read_json(tmp_path / "r" / FAILED_FLAG)
    assert (failed["stage"], failed["error"]) == ("evaluate", "RuntimeError")
    assert len(PipelineModel.load(str(tmp_path / "r" / "model")).stages) == 5  # waited for, complete
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_an_input_without_images_changes_nothing(
    spark: SparkSession, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in" / "Banana").mkdir(parents=True)
    (tmp_path / "in" / "Banana" / "notes.txt").write_text("no pictures here")
    earlier = tmp_path / "runs" / "r" / COMPLETED_FLAG
    earlier.parent.mkdir(parents=True)
    earlier.write_text("{}")
    argv = [
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "runs"),
        "--run-id",
        "r",
        "--weights",
        str(weights),
    ]

    assert main(argv, local=True) == 2

    assert "no .jpg, .jpeg or .png file" in capsys.readouterr().err
    assert earlier.read_text() == "{}" and not (tmp_path / "runs" / "r" / FAILED_FLAG).exists()


def test_weights_of_another_model_stop_the_tensorflow_engine_before_spark(
    sample_images: Path, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--input",
        str(sample_images),
        "--output",
        str(tmp_path),
        "--engine",
        "tensorflow",
        "--weights",
        str(models_dir / WITH_TOP),
    ]

    assert main(argv, local=True) == 2
    assert "does not hold MobileNetV2" in capsys.readouterr().err


def test_an_outsize_file_and_a_decompression_bomb_are_rejected_by_the_options_caps(
    spark: SparkSession, weights: Path, tmp_path: Path
) -> None:
    generate(tmp_path / "in", per_class=2, seed=3, defects=False)
    (tmp_path / "in" / "Banana" / "bomb.png").write_bytes(png_bomb(4000, 3000))  # 12 MP in 2 kB
    with (tmp_path / "in" / "Banana" / "huge.jpg").open("wb") as sparse:
        sparse.truncate(2_000_001)
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "runs"), "--run-id", "r"]
    caps = ["--max-image-bytes", "2000000", "--max-image-pixels", "10000000"]  # both under the defaults

    assert main([*argv, *caps, "--weights", str(weights)], local=True) == 0

    rejected = pd.read_csv(tmp_path / "runs" / "r" / "rejected.csv")
    assert dict(zip(rejected["path"].str.rsplit("/", n=1).str[-1], rejected["reason"], strict=True)) == {
        "bomb.png": "image too large: 4000x3000 pixels, over the limit of 10000000 "
        "(--max-image-pixels; raise it to decode this image)",
        "huge.jpg": "file too large: 2000001 bytes, over the limit of 2000000 "
        "(--max-image-bytes; raise it to read this file)",
    }
    counts = read_json(tmp_path / "runs" / "r" / "manifest.json")["counts"]
    assert (counts["images_featurized"], counts["images_rejected"]) == (10, 2)


def test_a_training_split_over_the_cap_is_fitted_on_a_stratified_sample_and_every_image_scored(
    spark: SparkSession, weights: Path, tmp_path: Path
) -> None:
    generate(tmp_path / "in", per_class=12, seed=5, defects=False)
    run(spark, tmp_path / "in", tmp_path / "runs", "capped", weights, fit_max_images=20)

    output = tmp_path / "runs" / "capped"
    features = spark.read.parquet(str(output / "features"))
    train = Counter(r["label"] for r in features.where("split = 'train'").select("label").collect())
    counts, metrics = read_json(output / "manifest.json")["counts"], read_json(output / "metrics.json")
    expected = sum(proportional_quotas(train, 20, FIT_MAX_PER_CLASS).values())

    assert sum(train.values()) == counts["train_images"] > 20
    assert counts["images_fitted"] == metrics["images_fitted"] == expected <= 20
    assert class_labels(PipelineModel.load(str(output / "model"))) == sorted(train)  # every class fitted
    csv = pd.read_csv(output / "pca.csv", keep_default_na=False)
    assert len(csv) == counts["images_featurized"] == features.count() == 60
    assert set(csv["predicted_label"]) <= set(train) and csv["pca_10"].notna().all()
    assert metrics["train_images"] + metrics["test_images"] == 60
