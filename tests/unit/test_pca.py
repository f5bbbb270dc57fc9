from pathlib import Path

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, PCAModel
from pyspark.ml.linalg import DenseVector
from pyspark.sql import DataFrame, SparkSession

from featurizer import pca
from featurizer.pca import CovariancePCA, Moments


def _correlated(rows: int, features: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, features)) @ rng.normal(size=(features, features)) + 3.0


def _frame(spark: SparkSession, values: np.ndarray, partitions: int = 4) -> DataFrame:
    """Rows (id, v) of the values after the first 10%: the first partitions are left empty, as a
    filtered cache's can be, and contribute nothing."""
    rows = [(i, DenseVector(v)) for i, v in enumerate(values)]
    frame = spark.sparkContext.parallelize(rows, partitions).toDF(["id", "v"]).cache()
    return frame.where(frame.id >= len(values) // 10)


def test_moments_add_up_to_those_of_all_rows_even_far_from_zero() -> None:
    values = _correlated(500, 6) + 1e6  # sum of squares minus squared sum would keep 5 digits here
    parts = np.split(values, [1, 7, 300])

    total = Moments.of(parts[0]) + Moments.of(parts[1]) + Moments.of(parts[2]) + Moments.of(parts[3])

    assert total.rows == 500
    np.testing.assert_allclose(total.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(total.scatter / 499, np.cov(values, rowvar=False), rtol=1e-8)


@pytest.mark.parametrize("fan_in", [pca.TREE_FAN_IN, 2])  # 2: six partitions merged in three levels
def test_same_model_as_spark_ml_pca(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, fan_in: int
) -> None:
    monkeypatch.setattr(pca, "TREE_FAN_IN", fan_in)
    frame = _frame(spark, _correlated(440, 12), partitions=6)

    ours = CovariancePCA(k=4, inputCol="v", outputCol="p").fit(frame)
    spark_ml = PCA(k=4, inputCol="v", outputCol="p").fit(frame)

    assert isinstance(ours, PCAModel)
    assert (ours.getK(), ours.getInputCol(), ours.getOutputCol()) == (4, "v", "p")
    np.testing.assert_allclose(
        ours.explainedVariance.toArray(), spark_ml.explainedVariance.toArray(), rtol=1e-9
    )
    theirs = spark_ml.pc.toArray()
    signs = np.sign(np.sum(ours.pc.toArray() * theirs, axis=0))  # a component's sign is arbitrary
    np.testing.assert_allclose(ours.pc.toArray(), theirs * signs, atol=1e-9)
    projected = np.array([row.p.toArray() for row in ours.transform(frame).orderBy("id").collect()])
    expected = np.array([row.p.toArray() for row in spark_ml.transform(frame).orderBy("id").collect()])
    np.testing.assert_allclose(projected, expected * signs, atol=1e-7)


def test_components_point_their_largest_loading_up_and_save_as_spark_ml_pca(
    spark: SparkSession, tmp_path: Path
) -> None:
    frame = _frame(spark, _correlated(200, 8, seed=3))
    pipeline = Pipeline(stages=[CovariancePCA(k=8, inputCol="v", outputCol="p")]).fit(frame)
    pipeline.write().save(str(tmp_path / "model"))

    loaded = PipelineModel.load(str(tmp_path / "model")).stages[0]

    assert type(loaded) is PCAModel
    components = loaded.pc.toArray()
    np.testing.assert_array_equal(components, pipeline.stages[0].pc.toArray())
    largest = components[np.argmax(np.abs(components), axis=0), np.arange(8)]
    assert (largest > 0).all()
    shares = loaded.explainedVariance.toArray()
    assert shares.sum() == pytest.approx(1.0)
    assert list(shares) == sorted(shares, reverse=True)


def test_too_few_rows_or_too_many_components_are_refused(spark: SparkSession) -> None:
    one_row = _frame(spark, _correlated(1, 5), partitions=2)
    with pytest.raises(ValueError, match="at least 2 rows to estimate a covariance; it was given 1"):
        CovariancePCA(k=2, inputCol="v").fit(one_row)
    with pytest.raises(ValueError, match="it was given 0"):
        CovariancePCA(k=2, inputCol="v").fit(one_row.limit(0))
    with pytest.raises(ValueError, match="k=6 is more than the 5 features of v"):
        CovariancePCA(k=6, inputCol="v").fit(_frame(spark, _correlated(10, 5)))
