import numpy as np
import pytest
from pyspark.ml.feature import StringIndexer
from pyspark.sql import SparkSession

from featurizer.model import NotEnoughData, as_features, as_model_input, label_indexer


def test_features_come_back_from_the_cached_vectors_bit_for_bit(spark: SparkSession) -> None:
    rng = np.random.default_rng(0)
    extremes = np.array([0.0, 1e-45, 1.2e-38, 3.4e38, np.pi, 6.0], dtype=np.float32)  # subnormal to max
    values = np.concatenate([rng.random(1274, dtype=np.float32) * 6, extremes])
    frame = spark.createDataFrame(
        [("a", "Banana", values.tolist())], "image_id string, label string, features array<float>"
    )

    back = as_features(as_model_input(frame).drop("features"))

    assert back.columns == ["image_id", "label", "features"]
    assert back.schema["features"].dataType.simpleString() == "array<float>"
    returned = np.asarray(back.collect()[0]["features"], dtype=np.float32)
    assert np.array_equal(returned.view(np.uint32), values.view(np.uint32))


def test_the_indexer_orders_classes_as_spark_fits_them(spark: SparkSession) -> None:
    # Beyond U+FFFF, Java's UTF-16 order differs from Python's code-point order: U+1D49C < U+FB00 in Java.
    labels = ["banana", "Banana", "\u00c4pfel", "\ufb00", "\U0001d49c", "10", "9", "Zucchini"]
    frame = spark.createDataFrame([(label,) for label in labels * 2], "label string")
    fitted = StringIndexer(inputCol="label", outputCol="i", stringOrderType="alphabetAsc").fit(frame)

    assert label_indexer(reversed(labels)).labels == fitted.labels


def test_a_single_class_is_refused_with_the_fix() -> None:
    with pytest.raises(NotEnoughData, match=r"holds 1 class\(es\) \('Banana'\).*its own sub-folder"):
        label_indexer(["Banana"])
