"""Evaluate: accuracy, weighted F1, per-class precision/recall and the confusion matrix on the test split,
and the accuracy on the training split (all of it, not only the images the model was fitted on).

One Spark aggregation counts (split, true class, predicted class) over every labelled image: the split
sizes, the training accuracy and the test split's confusion matrix all follow from it, and every test
metric with the definitions of Spark's MulticlassClassificationEvaluator (the tests check they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurizer.model import PREDICTED_LABEL, NotEnoughData, class_labels, explained_variance


@dataclass(frozen=True)
class SplitCounts:
    """One split's predictions: matrix[true, predicted] counts, and its images of classes not trained on."""

    matrix: np.ndarray
    unseen: int = 0

    @property
    def images(self) -> int:
        return int(self.matrix.sum()) + self.unseen


def prediction_counts(predictions: DataFrame, labels: list[str]) -> dict[str, SplitCounts]:
    """Each split's counts, in one aggregation of the labelled rows of `pca/` (split, label,
    predicted_label): a handful of small columns, read without the features.

    Rows are the classes in the model's label order; a test image whose class never appears in training
    is counted apart.
    """
    index = {label: i for i, label in enumerate(labels)}
    matrices: dict[str, np.ndarray] = {}
    unseen: dict[str, int] = {}
    labelled = predictions.where(F.col("label").isNotNull())
    for row in labelled.groupBy("split", "label", PREDICTED_LABEL).count().collect():
        split = row["split"]
        matrix = matrices.setdefault(split, np.zeros((len(labels), len(labels)), dtype=np.int64))
        if row["label"] in index:
            matrix[index[row["label"]], index[row[PREDICTED_LABEL]]] += row["count"]
        else:
            unseen[split] = unseen.get(split, 0) + row["count"]
    return {split: SplitCounts(matrix, unseen.get(split, 0)) for split, matrix in matrices.items()}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def classification_metrics(matrix: np.ndarray, labels: list[str]) -> dict[str, Any]:
    true_positive = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = support.sum()
    if total == 0:
        raise NotEnoughData(
            "no test image belongs to a class seen in training: the Test/ folders' classes must also "
            "be in Training/"
        )
    return {
        "accuracy": float(true_positive.sum() / total),
        "weighted_f1": float((f1 * support).sum() / total),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
    }


def split_metrics(counts: dict[str, SplitCounts], labels: list[str]) -> dict[str, Any]:
    """The test split's metrics, the split sizes, and the accuracy on the training split itself."""
    if "test" not in counts:
        raise NotEnoughData(
            "the test split is empty: every class has a single usable image; add images, or use "
            "Training/ and Test/ folders to choose the split yourself"
        )
    test, train = counts["test"], counts["train"]  # fit needed training images of 2 classes or more
    return {
        "train_images": train.images,
        "test_images": test.images,
        **classification_metrics(test.matrix, labels),
        # Far above the test accuracy, it says the classifier learnt the training images by heart.
        "train_accuracy": float(np.trace(train.matrix) / train.images),
        "test_images_of_unseen_classes": test.unseen,
    }


def pca_summary(model: PipelineModel) -> dict[str, Any]:
    variance = explained_variance(model)
    return {"k": len(variance), "explained_variance": variance, "cumulative": np.cumsum(variance).tolist()}


def evaluate(model: PipelineModel, scored: DataFrame, images_fitted: int) -> dict[str, Any]:
    """Metrics of the fitted model from every image's prediction (`scored`: the written `pca/`), and how
    many training images it was fitted on."""
    labels = class_labels(model)
    return {
        **split_metrics(prediction_counts(scored, labels), labels),
        "images_fitted": images_fitted,
        "pca": pca_summary(model),
    }
