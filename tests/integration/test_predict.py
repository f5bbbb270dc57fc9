"""Predict runs: new images classified by the pipeline a completed run trained, as applying its saved
PipelineModel by hand classifies them; a trained run of other features, or one that did not finish, is
refused before Spark starts."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from featurizer.cli import main as cli
from featurizer.job import InputError, RunFailed, execute, prepare
from featurizer.manifest import COMPLETED_FLAG
from featurizer.model import PREDICTED_LABEL, as_model_input
from featurizer.options import JobOptions
from featurizer.progress import Progress
from featurizer.report import PREDICT_SECTIONS, REPORT_NAME
from featurizer.samples import generate
from tests.images import bad_files, write


@pytest.fixture(scope="module")
def new_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Unlabelled images at the top, a few in folders named after trained classes, one in a folder that
    is no class, a corrupt file and a note."""
    drawn = tmp_path_factory.mktemp("drawn")
    generate(drawn, per_class=2, seed=7, defects=False)
    root = tmp_path_factory.mktemp("predict") / "batch"
    classes = sorted(folder for folder in drawn.iterdir() if folder.is_dir())
    for folder in classes[:2]:
        shutil.copytree(folder, root / folder.name)
    loose = sorted(image for folder in classes[2:] for image in folder.iterdir())
    for n, image in enumerate(loose):
        shutil.copy(image, root / f"loose {n}{image.suffix}")
    (root / "not a class").mkdir()
    shutil.copy(loose[0], root / "not a class" / "copy.jpg")
    write(root, {"broken.jpg": bad_files()["truncated.jpg"][0]})
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def predicted(
    onnx_run: Path, new_images: Path, weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    output = tmp_path_factory.mktemp("predict-runs")
    argv = [
        "--input",
        str(new_images),
        "--output",
        str(output),
        "--run-id",
        "p",
        "--model-run",
        str(onnx_run),
    ]
    assert cli(["predict", *argv, "--weights", str(weights)]) == 0
    return output / "p"


def test_every_image_gets_the_class_the_saved_pipeline_gives_it(
    spark: SparkSession, onnx_run: Path, new_images: Path, predicted: Path
) -> None:
    features = spark.read.parquet(str(predicted / "features"))
    by_hand = PipelineModel.load(str(onnx_run / "model")).transform(as_model_input(features))
    expected = {row["image_id"]: row[PREDICTED_LABEL] for row in by_hand.collect()}
    table = pd.read_csv(predicted / "predictions.csv", keep_default_na=False)
    parquet = spark.read.parquet(str(predicted / "predictions")).collect()

    images = {p for p in new_images.rglob("*.*") if p.suffix != ".txt" and p.name != "broken.jpg"}
    assert len(table) == len(parquet) == len(expected) == len(images)
    assert dict(zip(table["image_id"], table[PREDICTED_LABEL], strict=True)) == expected
    for row in parquet:
        top = [entry["probability"] for entry in row["top_labels"]]
        assert row["top_labels"][0]["label"] == row[PREDICTED_LABEL]
        assert row["probability"] == top[0] and top == sorted(top, reverse=True) and len(top) == 3
    assert "broken.jpg" in (predicted / "rejected.csv").read_text()


def test_the_counts_say_what_was_classified_and_scored_against_folders(
    predicted: Path, new_images: Path
) -> None:
    metrics = json.loads((predicted / "metrics.json").read_text())
    completed = json.loads((predicted / COMPLETED_FLAG).read_text())
    manifest = json.loads((predicted / "manifest.json").read_text())
    table = pd.read_csv(predicted / "predictions.csv", keep_default_na=False)
    in_classes = table[table["label"].isin(metrics["classes"])]

    assert metrics["images_classified"] == sum(metrics["predicted"].values()) == len(table)
    assert metrics["predicted"] == {c: int((table[PREDICTED_LABEL] == c).sum()) for c in metrics["classes"]}
    assert metrics["images_scored"] == len(in_classes) == 4
    assert metrics["images_in_other_folders"] == 1
    assert metrics["accuracy"] == (in_classes["label"] == in_classes[PREDICTED_LABEL]).mean()
    assert completed["summary"]["images_classified"] == metrics["images_classified"]
    assert manifest["counts"]["images_rejected"] == 1
    assert manifest["counts"]["rows"]["predictions_csv"] == len(table)
    assert (
        manifest["model"]["model_sha256"]
        == json.loads((Path(metrics["model_run"]) / "manifest.json").read_text())["model"]["model_sha256"]
    )
    page = (predicted / REPORT_NAME).read_text(encoding="utf-8")
    assert "<h1>Predict run p of batch</h1>" in page
    assert [key for key in PREDICT_SECTIONS if f'<section id="{key}">' in page] == list(PREDICT_SECTIONS)


def _trained_copy(onnx_run: Path, root: Path, **model: object) -> Path:
    """The trained run's record (no outputs), with its model block changed."""
    copy = root / "runs" / "trained"
    copy.mkdir(parents=True)
    manifest = json.loads((onnx_run / "manifest.json").read_text())
    manifest["model"] |= model
    (copy / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(onnx_run / COMPLETED_FLAG, copy)
    return copy


@pytest.mark.parametrize(
    "changed", [{"model_sha256": "0" * 64}, {"preprocessing_version": 0}], ids=["model", "preprocessing"]
)
def test_a_trained_run_of_other_features_is_refused_naming_both(
    onnx_run: Path, new_images: Path, weights: Path, tmp_path: Path, changed: dict
) -> None:
    trained = _trained_copy(onnx_run, tmp_path, **changed)
    options = JobOptions(
        str(new_images), str(tmp_path / "runs"), "p", weights=str(weights), model_run=str(trained)
    )

    with pytest.raises(InputError, match="not comparable") as refused:
        prepare(options)

    recorded = json.loads((trained / "manifest.json").read_text())["model"]
    assert f"version {recorded['preprocessing_version']}" in str(refused.value)
    assert recorded["model_sha256"][:16] in str(refused.value)
    assert not (tmp_path / "runs" / "p").exists()


def test_a_trained_run_that_did_not_complete_is_refused(
    onnx_run: Path, new_images: Path, tmp_path: Path
) -> None:
    trained = _trained_copy(onnx_run, tmp_path)
    (trained / COMPLETED_FLAG).unlink()
    options = JobOptions(str(new_images), str(tmp_path / "runs"), "p", model_run=str(trained))

    with pytest.raises(InputError, match=r"--model-run .* is not a completed run"):
        prepare(options)


def test_a_predict_run_is_no_trained_run(predicted: Path, new_images: Path, tmp_path: Path) -> None:
    options = JobOptions(str(new_images), str(tmp_path / "runs"), "p2", model_run=str(predicted))

    with pytest.raises(InputError, match="is a predict run, which fitted no pipeline: give the run it"):
        prepare(options)


def test_an_input_whose_every_image_is_rejected_fails_saying_so(
    spark: SparkSession, onnx_run: Path, weights: Path, tmp_path: Path
) -> None:
    write(tmp_path / "broken", {"a.jpg": bad_files()["truncated.jpg"][0]})
    options = JobOptions(
        str(tmp_path / "broken"), str(tmp_path / "runs"), "p", weights=str(weights), model_run=str(onnx_run)
    )

    with pytest.raises(RunFailed, match="failed in stage predict: every image of the input was rejected"):
        execute(spark, prepare(options), Progress(io.StringIO()))

    assert (tmp_path / "runs" / "p" / "rejected.csv").read_text().count("a.jpg") == 1
    assert not (tmp_path / "runs" / "p" / COMPLETED_FLAG).exists()
