import numpy as np
from pyspark.sql import SparkSession

from featurizer.model import as_features, as_model_input


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
