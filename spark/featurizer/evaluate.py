"""Evaluate: accuracy, weighted F1, per-class precision/recall and the confusion matrix on the test split,
and the accuracy on the training split.

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

from featurizer.model import LABEL_INDEX, NotEnoughData, class_labels, explained_variance


@dataclass(frozen=True)
class SplitCounts:
    """One split's predictions: matrix[true, predicted] counts, and its images of classes not trained on."""

    matrix: np.ndarray
    unseen: int = 0

    @property
    def images(self) -> int:
        return int(self.matrix.sum()) + self.unseen


def prediction_counts(predictions: DataFrame, classes: int) -> dict[str, SplitCounts]:
    """Each split's counts, in one aggregation.

    Rows are the classes in the model's label order; a test image whose class never appears in training
    gets index `classes` ("keep") and is counted apart.
    """
    matrices: dict[str, np.ndarray] = {}
    unseen: dict[str, int] = {}
    for row in predictions.groupBy("split", LABEL_INDEX, "prediction").count().collect():
        split = row["split"]
        matrix = matrices.setdefault(split, np.zeros((classes, classes), dtype=np.int64))
        if int(row[LABEL_INDEX]) >= classes:
            unseen[split] = unseen.get(split, 0) + row["count"]
        else:
            matrix[int(row[LABEL_INDEX]), int(row["prediction"])] += row["count"]
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


def evaluate(model: PipelineModel, labelled: DataFrame) -> dict[str, Any]:
    """Metrics of the fitted model on every labelled row (with `as_model_input` applied), by split."""
    labels = class_labels(model)
    return {
        **split_metrics(prediction_counts(model.transform(labelled), len(labels)), labels),
        "pca": pca_summary(model),
    }
