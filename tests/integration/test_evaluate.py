import numpy as np
import pytest
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.sql import SparkSession

from featurizer.evaluate import SplitCounts, classification_metrics, prediction_counts, split_metrics
from featurizer.model import NotEnoughData

SCHEMA = "split string, label string, predicted_label string"


def test_metrics_match_spark_evaluator(spark: SparkSession) -> None:
    pairs = [(0.0, 0.0)] * 5 + [(0.0, 1.0)] * 2 + [(1.0, 1.0)] * 4 + [(2.0, 1.0), (2.0, 2.0), (1.0, 0.0)]
    indexed = spark.createDataFrame(
        [("test", *pair) for pair in pairs], "split string, label_index double, prediction double"
    )
    predictions = spark.createDataFrame([("test", "abc"[int(t)], "abc"[int(p)]) for t, p in pairs], SCHEMA)

    counts = prediction_counts(predictions, ["a", "b", "c"])
    metrics = classification_metrics(counts["test"].matrix, ["a", "b", "c"])

    def spark_metric(name: str, **extra: float) -> float:
        return MulticlassClassificationEvaluator(
            labelCol="label_index", predictionCol="prediction", metricName=name, **extra
        ).evaluate(indexed)

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
    assert (list(counts), counts["test"].unseen) == (["test"], 0)


def test_one_aggregation_gives_each_split_its_sizes_and_the_training_accuracy(spark: SparkSession) -> None:
    rows = [("train", "x", "x")] * 6 + [("train", "y", "x")] + [("train", "y", "y")] * 3
    rows += [("test", "x", "x"), ("test", "y", "x"), ("test", "z", "y"), ("test", "z", "x")]  # z: unseen
    rows += [("train", None, "y"), ("test", None, "x")]  # unlabelled images are predicted, not counted
    predictions = spark.createDataFrame(rows, SCHEMA)

    counts = prediction_counts(predictions, ["x", "y"])
    metrics = split_metrics(counts, ["x", "y"])

    assert (counts["test"].matrix.tolist(), counts["test"].unseen) == ([[1, 0], [1, 0]], 2)
    assert counts["train"].matrix.tolist() == [[6, 0], [1, 3]]
    assert (metrics["train_images"], metrics["test_images"]) == (10, 4)
    assert metrics["train_accuracy"] == pytest.approx(0.9)
    assert metrics["accuracy"] == pytest.approx(0.5)  # of the 2 test images of classes seen in training
    assert metrics["test_images_of_unseen_classes"] == 2


def test_an_empty_test_split_says_how_to_get_one() -> None:
    with pytest.raises(NotEnoughData, match=r"the test split is empty.*Training/ and Test/"):
        split_metrics({"train": SplitCounts(np.array([[3, 0], [0, 2]]))}, ["x", "y"])


def test_a_class_never_predicted_has_zero_precision_not_nan() -> None:
    metrics = classification_metrics(np.array([[3, 0], [2, 0]]), ["x", "y"])

    assert metrics["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "support": 2}
