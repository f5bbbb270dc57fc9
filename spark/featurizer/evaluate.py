"""Evaluate: accuracy, weighted F1, per-class precision/recall and the confusion matrix on the test split.

One Spark aggregation builds the confusion matrix (classes x classes counts); every metric follows from it
with the definitions of Spark's MulticlassClassificationEvaluator (the tests check they agree).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from featurizer.model import LABEL_INDEX, NotEnoughData, class_labels, explained_variance


def prediction_counts(predictions: DataFrame, classes: int) -> tuple[np.ndarray, int]:
    """(matrix[true, predicted] counts, images of classes unseen in training), in one aggregation.

    Rows are the classes in the model's label order; a test image whose class never appears in training
    gets index `classes` ("keep") and is counted apart.
    """
    matrix = np.zeros((classes, classes), dtype=np.int64)
    unseen = 0
    for row in predictions.groupBy(LABEL_INDEX, "prediction").count().collect():
        if int(row[LABEL_INDEX]) >= classes:
            unseen += row["count"]
        else:
            matrix[int(row[LABEL_INDEX]), int(row["prediction"])] += row["count"]
    return matrix, unseen


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


def pca_summary(model: PipelineModel) -> dict[str, Any]:
    variance = explained_variance(model)
    return {"k": len(variance), "explained_variance": variance, "cumulative": np.cumsum(variance).tolist()}


def evaluate(model: PipelineModel, test: DataFrame) -> dict[str, Any]:
    """Metrics of the fitted model on labelled test rows (with `as_model_input` applied)."""
    labels = class_labels(model)
    matrix, unseen = prediction_counts(model.transform(test), len(labels))
    return {
        **classification_metrics(matrix, labels),
        "test_images_of_unseen_classes": unseen,
        "pca": pca_summary(model),
    }
