import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.sql import SparkSession

from featurizer.evaluate import classification_metrics, prediction_counts


def test_metrics_match_spark_evaluator(spark: SparkSession) -> None:
    pairs = [(0.0, 0.0)] * 5 + [(0.0, 1.0)] * 2 + [(1.0, 1.0)] * 4 + [(2.0, 1.0), (2.0, 2.0), (1.0, 0.0)]
    predictions = spark.createDataFrame(pairs, "label_index double, prediction double")

    matrix, unseen = prediction_counts(predictions, 3)
    metrics = classification_metrics(matrix, ["a", "b", "c"])

    def spark_metric(name: str, **extra: float) -> float:
        return MulticlassClassificationEvaluator(
            labelCol="label_index", predictionCol="prediction", metricName=name, **extra
        ).evaluate(predictions)

    assert metrics["accuracy"] == pytest.approx(spark_metric("accuracy"))
    assert metrics["weighted_f1"] == pytest.approx(spark_metric("f1"))
    for index, label in enumerate("abc"):
        assert metrics["per_class"][label]["precision"] == pytest.approx(
            spark_metric("precisionByLabel", metricLabel=float(index))
        )
        assert metrics["per_class"][label]["recall"] == pytest.approx(
            spark_metric("recallByLabel", metricLabel=float(index))
        )
    assert metrics["confusion_matrix"]["matrix"] == [[5, 2, 0], [1, 4, 0], [0, 1, 1]]
    assert unseen == 0


def test_test_images_of_classes_unseen_in_training_are_counted_apart(spark: SparkSession) -> None:
    pairs = [(0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (2.0, 0.0)]  # index 2 = "keep": a class not in training
    predictions = spark.createDataFrame(pairs, "label_index double, prediction double")

    matrix, unseen = prediction_counts(predictions, 2)

    assert (matrix.tolist(), unseen) == ([[1, 0], [1, 0]], 2)


def test_a_class_never_predicted_has_zero_precision_not_nan() -> None:
    metrics = classification_metrics(np.array([[3, 0], [2, 0]]), ["x", "y"])

    assert metrics["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "support": 2}
