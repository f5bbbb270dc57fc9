"""The INT8 model's quality gate: its features against fp32's on a validation set it was not calibrated
on, as cosines and as the accuracy of the job's own classifier trained on each.

A model below any threshold is refused with every figure, so a user sees how far it missed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featurizer.calibration import MIN_PER_CLASS, CalibrationUnavailable, ImageSet

MIN_MEDIAN_COSINE = 0.98
MIN_P1_COSINE = 0.95
MAX_ACCURACY_LOSS = 0.005  # 0.5 points
GATE_TEST_FRACTION = 0.3
GATE_SEED = 42
BATCH = 16


class QualityGateFailed(ValueError):
    """The INT8 model's features are too far from fp32's; the message gives the figures."""


@dataclass(frozen=True)
class Quality:
    median_cosine: float
    p1_cosine: float
    accuracy_fp32: float
    accuracy_int8: float
    validation_images: int
    test_images: int
    validation: str

    def failures(self) -> list[str]:
        failed = []
        if self.median_cosine < MIN_MEDIAN_COSINE:
            failed.append(f"median cosine to fp32 {self.median_cosine:.4f} < {MIN_MEDIAN_COSINE}")
        if self.p1_cosine < MIN_P1_COSINE:
            failed.append(f"1st-percentile cosine to fp32 {self.p1_cosine:.4f} < {MIN_P1_COSINE}")
        if self.accuracy_fp32 - self.accuracy_int8 > MAX_ACCURACY_LOSS:
            failed.append(
                f"classifier accuracy {self.accuracy_int8:.2%} on INT8 features is more than "
                f"{MAX_ACCURACY_LOSS:.1%} below {self.accuracy_fp32:.2%} on fp32 features"
            )
        return failed

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "thresholds": {
                "min_median_cosine": MIN_MEDIAN_COSINE,
                "min_p1_cosine": MIN_P1_COSINE,
                "max_accuracy_loss": MAX_ACCURACY_LOSS,
            },
        }


def features(model: Path, images: np.ndarray) -> np.ndarray:
    """The model's features for the images, as the job's engine computes them."""
    from featurizer.engines import OnnxEngine

    engine = OnnxEngine(model, threads=os.cpu_count() or 1)
    return np.concatenate([engine.extract(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])


def cosines(one: np.ndarray, other: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(one, axis=1) * np.linalg.norm(other, axis=1)
    return np.einsum("ij,ij->i", one, other) / np.where(norms == 0, 1.0, norms)


def classifier_accuracy(spark: Any, vectors: np.ndarray, labels: tuple[str, ...]) -> tuple[float, int]:
    """Test accuracy of the job's pipeline (its default settings) trained on these features, on a split
    drawn as the job draws it; and the test images."""
    from pyspark.sql import functions as F

    from featurizer.model import PREDICTED_LABEL, as_model_input, fit
    from featurizer.options import JobOptions
    from featurizer.stratified import draw

    defaults = JobOptions(input="", output="", run_id="quality-gate")
    pairs = enumerate(zip(labels, vectors, strict=True))
    rows = [(f"v{i:06d}", label, vector.tolist()) for i, (label, vector) in pairs]
    frame = spark.createDataFrame(rows, "image_id string, label string, features array<float>")
    test = draw("image_id", GATE_SEED) < GATE_TEST_FRACTION
    split = as_model_input(frame.withColumn("split", F.when(test, "test").otherwise("train"))).cache()
    classes = sorted({*labels})
    try:
        train, test_rows = split.where("split = 'train'"), split.where("split = 'test'")
        tested, trained_on = test_rows.count(), train.select("label").distinct().count()
        if not tested or trained_on < len(classes):
            raise CalibrationUnavailable(
                f"the validation set is too small to measure a classifier on: its {GATE_TEST_FRACTION:.0%} "
                f"test split holds {tested} images and its training split {trained_on} of "
                f"{len(classes)} classes; give each class folder at least {MIN_PER_CLASS} images"
            )
        model = fit(
            train,
            classes,
            defaults.pca_k,
            None,
            defaults.classify_on,
            defaults.reg_param,
            defaults.max_iter,
        )
        scored = model.transform(test_rows)
        right = scored.where(F.col(PREDICTED_LABEL) == F.col("label")).count()
    finally:
        split.unpersist()
    return right / tested, tested


def measure(spark: Any, fp32: Path, int8: Path, validation: ImageSet) -> Quality:
    reference, quantized = features(fp32, validation.images), features(int8, validation.images)
    similarity = cosines(reference, quantized)
    accuracy_fp32, tested = classifier_accuracy(spark, reference, validation.labels)
    accuracy_int8, _ = classifier_accuracy(spark, quantized, validation.labels)
    return Quality(
        median_cosine=float(np.median(similarity)),
        p1_cosine=float(np.percentile(similarity, 1)),
        accuracy_fp32=accuracy_fp32,
        accuracy_int8=accuracy_int8,
        validation_images=len(similarity),
        test_images=tested,
        validation=validation.source,
    )


def check(quality: Quality) -> None:
    failed = quality.failures()
    if failed:
        raise QualityGateFailed(
            "the INT8 model fails the quality gate: " + "; ".join(failed) + f". All its figures: "
            f"{json.dumps(quality.as_dict(), sort_keys=True)}. Calibrate on images like yours "
            "(--calibration), or run with --precision fp32"
        )
