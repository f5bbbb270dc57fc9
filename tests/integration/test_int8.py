"""The INT8 model: built behind a quality gate that can fail, described in its metadata and the run's
manifest, and never run where fp32 was asked for (or the other way round)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from pyspark.sql import SparkSession

from featurizer.artifact import ModelUnavailable, model_for, onnx_model
from featurizer.calibration import (
    MIN_PER_CLASS,
    CalibrationUnavailable,
    ImageSet,
    default_calibration,
    default_validation,
    folder_images,
)
from featurizer.export import WEIGHTS_SHA256_KEY, export_onnx
from featurizer.job import execute, prepare
from featurizer.options import JobOptions
from featurizer.progress import Progress
from featurizer.quality import MIN_MEDIAN_COSINE, MIN_P1_COSINE, QualityGateFailed, measure
from featurizer.quantize import (
    CALIBRATION_KEY,
    FP32_SHA256_KEY,
    PRECISION_KEY,
    QUALITY_KEY,
    int8_path,
    quantize,
    set_metadata,
)
from featurizer.weights import resolve_weights, sha256_of
from tests.paths import ROOT

sys.path.insert(0, str(ROOT / "packaging"))  # as when it runs as a script: its own folder comes first

from build_model import build_int8


@pytest.fixture(scope="module")
def fp32(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(resolve_weights(str(weights)), tmp_path_factory.mktemp("fp32"))


@pytest.fixture(scope="module")
def built(spark: SparkSession, fp32: Path) -> tuple[Path, dict]:
    """The INT8 model as `build_model.py --precision int8` builds it by default."""
    return build_int8(spark, fp32, default_calibration(), default_validation())


def metadata(model: Path) -> dict[str, str]:
    return {
        entry.key: entry.value for entry in onnx.load(str(model), load_external_data=False).metadata_props
    }


def test_the_default_build_passes_the_gate_and_records_its_provenance_and_figures(
    fp32: Path, built: tuple[Path, dict]
) -> None:
    model, quality = built

    assert model == int8_path(fp32) and model.is_file()
    assert model.with_name(model.name + ".sha256").read_text() == f"{sha256_of(model)}  {model.name}\n"
    assert model.stat().st_size < fp32.stat().st_size / 3
    described = metadata(model)
    assert described[PRECISION_KEY] == "int8"
    assert described[FP32_SHA256_KEY] == sha256_of(fp32)
    assert described[WEIGHTS_SHA256_KEY] == metadata(fp32)[WEIGHTS_SHA256_KEY]
    assert "scikit-image photos astronaut" in described[CALIBRATION_KEY]
    assert json.loads(described[QUALITY_KEY]) == quality
    assert quality["median_cosine"] >= MIN_MEDIAN_COSINE and quality["p1_cosine"] >= MIN_P1_COSINE
    assert quality["validation_images"] == 192 and quality["test_images"] > 30
    assert "chelsea" in quality["validation"] and "chelsea" not in described[CALIBRATION_KEY]


def test_a_model_calibrated_on_images_unlike_the_validation_set_is_refused_with_its_figures(
    spark: SparkSession, fp32: Path, tmp_path: Path
) -> None:
    """Ranges from dark, flat images clip every real photo's activations."""
    copy = tmp_path / fp32.name
    copy.write_bytes(fp32.read_bytes())
    dark = np.full((16, 224, 224, 3), -0.9, dtype=np.float32)
    dark += np.linspace(0, 0.05, 224, dtype=np.float32)[None, None, :, None]
    calibration = ImageSet(dark, ("dark",) * 16, "dark gradients")

    with pytest.raises(QualityGateFailed, match=r"median cosine to fp32 0\.\d{4} < 0\.98") as refused:
        build_int8(spark, copy, calibration, default_validation())

    assert "--calibration" in str(refused.value)
    assert '"p1_cosine": ' in str(refused.value) and '"accuracy_int8": ' in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [copy.name], "a refused model is not left behind"


def test_a_validation_set_too_small_for_a_classifier_is_refused_before_any_figure(
    spark: SparkSession, fp32: Path, sample_images: Path, tmp_path: Path
) -> None:
    few = tmp_path / "few"
    for label in ("a", "b"):
        (few / label).mkdir(parents=True)
        for source in sorted(sample_images.rglob("*.jpg"))[:3]:
            (few / label / source.name).write_bytes(source.read_bytes())
    with pytest.raises(CalibrationUnavailable, match=f"needs at least {MIN_PER_CLASS}"):
        folder_images(few, labelled=True)

    two_each = default_validation().images[:4]
    with pytest.raises(CalibrationUnavailable, match="too small to measure a classifier on"):
        measure(spark, fp32, fp32, ImageSet(two_each, ("a", "a", "b", "b"), "4 images"))


def test_calibration_and_validation_folders_that_overlap_are_refused(tmp_path: Path) -> None:
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    for calibration, validation in (
        ("photos", "photos/cats"),
        ("photos/cats", "photos"),
        ("photos", "photos"),
    ):
        refused = subprocess.run(
            [
                sys.executable,
                ROOT / "packaging" / "build_model.py",
                "--precision",
                "int8",
                "--output",
                tmp_path,
                "--calibration",
                tmp_path / calibration,
                "--validation",
                tmp_path / validation,
            ],
            capture_output=True,
            text=True,
        )
        assert refused.returncode == 2 and "overlap: the quality gate" in refused.stderr, refused.stderr
        assert not list(tmp_path.glob("*.onnx")), "refused before any model is built"


def test_a_model_of_the_wrong_precision_or_without_gate_figures_is_refused(
    fp32: Path, built: tuple[Path, dict], tmp_path: Path, weights: Path
) -> None:
    model, _ = built
    with pytest.raises(ModelUnavailable, match="is an int8 model, but the run asks for --precision fp32"):
        onnx_model(str(model))
    with pytest.raises(ModelUnavailable, match="is an fp32 model, but the run asks for --precision int8"):
        onnx_model(str(fp32), "int8")

    ungated = quantize(
        fp32, ImageSet(default_validation().images[:16], ("x",) * 16, "16"), tmp_path / "q.onnx"
    )
    with pytest.raises(ModelUnavailable, match="without readable quality-gate figures: build it with"):
        onnx_model(str(ungated), "int8")
    malformed = onnx.load(str(ungated))
    set_metadata(malformed, {QUALITY_KEY: '{"median_cosine": 0.99'})
    onnx.save(malformed, str(ungated))
    with pytest.raises(ModelUnavailable, match="without readable quality-gate figures"):
        onnx_model(str(ungated), "int8")

    asked = JobOptions(input="in", output="out", run_id="r", weights=str(weights), precision="int8")
    with pytest.raises(ModelUnavailable, match=r"build_model\.py --precision int8"):
        model_for(asked)


def test_an_int8_run_says_so_in_its_manifest_with_the_gate_figures(
    spark: SparkSession, sample_images: Path, built: tuple[Path, dict], tmp_path: Path
) -> None:
    model, quality = built
    options = JobOptions(
        input=str(sample_images), output=str(tmp_path), run_id="int8", model=str(model), precision="int8"
    )

    execute(spark, prepare(options), Progress(io.StringIO()))

    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["options"]["precision"] == "int8"
    assert manifest["model"]["precision"] == "int8"
    assert manifest["model"]["model_sha256"] == sha256_of(model)
    assert manifest["model"]["quality"] == quality
    assert "MinMax" in manifest["model"]["calibration"]
    assert manifest["counts"]["images_through_model"] == manifest["counts"]["images_featurized"] > 0

    refit = JobOptions(
        input="", output=str(tmp_path), run_id="refit", from_run=str(tmp_path / "int8"), pca_k=3
    )
    execute(spark, prepare(refit), Progress(io.StringIO()))
    refitted = json.loads((tmp_path / "refit" / "manifest.json").read_text())
    assert refitted["options"]["precision"] == "int8", "a refit of an INT8 run is an INT8 refit"
    assert refitted["model"] == manifest["model"]
    assert refitted["counts"]["images_through_model"] == 0
