from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyspark.errors import IllegalArgumentException
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, PCAModel, StandardScalerModel
from pyspark.ml.linalg import DenseVector
from pyspark.sql import DataFrame, SparkSession

from featurizer import pca
from featurizer.model import FEATURES_VECTOR, PCA_COLUMN, SCALED, fitted_scaler, scaler
from featurizer.pca import CovariancePCA, Moments


def _correlated(rows: int, features: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, features)) @ rng.normal(size=(features, features)) + 3.0


def _frame(spark: SparkSession, values: np.ndarray, partitions: int = 4) -> DataFrame:
    """Rows (id, v) of the values' second half, in `partitions`: the first half of the partitions is
    left empty, as a filtered cache's can be."""
    rows = [(i, DenseVector(v)) for i, v in enumerate(values)]
    frame = spark.sparkContext.parallelize(rows, partitions).toDF(["id", "v"]).cache()
    return frame.where(frame.id >= len(values) // 2)


def _batches(values: np.ndarray, rows: int) -> list[pa.RecordBatch]:
    """The values as mapInArrow hands them over: list<double> batches of `rows` rows, slices of one
    array as Arrow's are, the last one empty."""
    column = pa.array(values.tolist(), pa.list_(pa.float64()))
    starts = range(0, len(values) + 1, rows)
    return [pa.RecordBatch.from_arrays([column[i : i + rows]], ["values"]) for i in starts]


def test_moments_add_up_to_those_of_all_rows_even_far_from_zero() -> None:
    values = _correlated(500, 6) + 1e6  # sum of squares minus squared sum would keep 5 digits here
    parts = np.split(values, [1, 7, 300])

    total = Moments.of(parts[0]) + Moments.of(parts[1]) + Moments.of(parts[2]) + Moments.of(parts[3])

    assert total.rows == 500
    np.testing.assert_allclose(total.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(total.scatter / 499, np.cov(values, rowvar=False), rtol=1e-8)


def test_a_partition_s_batches_add_up() -> None:
    values = _correlated(45, 5)
    batches = _batches(values, 9)

    (row,) = [batch.to_pylist()[0] for batch in pca._partition_moments(iter(batches))]
    found = pca._from_row((row["rows"], row["mean"], row["scatter"]))

    assert found.rows == 45
    np.testing.assert_allclose(found.scatter / 44, np.cov(values, rowvar=False), rtol=1e-12)
    assert list(pca._partition_moments(iter(batches[-1:]))) == []  # an empty partition sends nothing


def test_vectors_of_different_sizes_are_refused() -> None:
    mixed = pa.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0, 7.0]], pa.list_(pa.float64()))
    with pytest.raises(ValueError, match=r"PCA input vectors differ in size \(2 and 3\): every vector"):
        list(pca._partition_moments(iter([pa.RecordBatch.from_arrays([mixed], ["values"])])))
    with pytest.raises(ValueError, match=r"differ in size \(2 and 3\)"):
        Moments.of(np.ones((2, 2))) + Moments.of(np.ones((2, 3)))


def test_null_vectors_are_refused() -> None:
    holed = pa.array([[1.0, 2.0], None, [5.0, 6.0]], pa.list_(pa.float64()))
    with pytest.raises(ValueError, match="PCA input has null vectors: drop or fill those rows"):
        list(pca._partition_moments(iter([pa.RecordBatch.from_arrays([holed], ["values"])])))


@pytest.mark.parametrize(("slots", "fan_in"), [(None, pca.TREE_FAN_IN), (12, 2)])  # 12, 2: two levels
def test_same_model_as_spark_ml_pca(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, slots: int | None, fan_in: int
) -> None:
    if slots:
        monkeypatch.setattr(pca, "task_slots", lambda _: slots)
    monkeypatch.setattr(pca, "TREE_FAN_IN", fan_in)
    frame = _frame(spark, _correlated(440, 12), partitions=12)

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
    frame = _frame(spark, _correlated(400, 8, seed=3))
    pipeline = Pipeline(stages=[CovariancePCA(k=8, inputCol="v", outputCol="p")]).fit(frame)
    pipeline.write().save(str(tmp_path / "model"))

    loaded = PipelineModel.load(str(tmp_path / "model")).stages[0]

    assert type(loaded) is PCAModel
    assert (loaded.getK(), loaded.getInputCol(), loaded.getOutputCol()) == (8, "v", "p")
    components = loaded.pc.toArray()
    np.testing.assert_array_equal(components, pipeline.stages[0].pc.toArray())
    largest = components[np.argmax(np.abs(components), axis=0), np.arange(8)]
    assert (largest > 0).all()
    shares = loaded.explainedVariance.toArray()
    assert shares.sum() == pytest.approx(1.0)
    assert list(shares) == sorted(shares, reverse=True)
    first = loaded.transform(frame).orderBy("id").first()
    expected = (np.asarray(first.v) @ components).tolist()
    assert first.p.toArray() == pytest.approx(expected)


def test_one_pass_s_moments_give_spark_ml_s_scaler_pca_and_component_count(spark: SparkSession) -> None:
    values = _correlated(300, 6, seed=5)
    values[:, 2] = 0.1  # a constant feature (whose sum rounds): Spark's scaler sends it to 0
    frame = spark.createDataFrame(
        [(i, DenseVector(v)) for i, v in enumerate(values)], ["id", FEATURES_VECTOR]
    )
    found = pca.moments(frame, FEATURES_VECTOR)

    ours, theirs = fitted_scaler(found), scaler().fit(frame)
    scaled = theirs.transform(frame)
    our_pca = CovariancePCA(k=3, inputCol=SCALED, outputCol=PCA_COLUMN).fit_moments(found.standardized())
    spark_pca = PCA(k=3, inputCol=SCALED, outputCol=PCA_COLUMN).fit(scaled)
    full = PCA(k=6, inputCol=SCALED).fit(scaled).explainedVariance.toArray()

    assert type(ours) is StandardScalerModel and type(our_pca) is PCAModel
    assert (ours.getInputCol(), ours.getOutputCol(), ours.getWithMean(), ours.getWithStd()) == (
        FEATURES_VECTOR,
        SCALED,
        True,
        True,
    )
    np.testing.assert_allclose(ours.mean.toArray(), theirs.mean.toArray(), rtol=1e-12)
    np.testing.assert_allclose(ours.std.toArray(), theirs.std.toArray(), rtol=1e-9)
    assert ours.std[2] == theirs.std[2] == 0
    got = np.array([r[SCALED].toArray() for r in ours.transform(frame).orderBy("id").collect()])
    np.testing.assert_allclose(got, np.array([r[SCALED].toArray() for r in scaled.orderBy("id").collect()]))
    np.testing.assert_allclose(
        our_pca.explainedVariance.toArray(), spark_pca.explainedVariance.toArray(), rtol=1e-9
    )
    signs = np.sign(np.sum(our_pca.pc.toArray() * spark_pca.pc.toArray(), axis=0))
    np.testing.assert_allclose(our_pca.pc.toArray(), spark_pca.pc.toArray() * signs, atol=1e-9)
    for share in (0.5, 0.9, 0.999):
        assert pca.components_for(found.standardized(), share) == np.searchsorted(np.cumsum(full), share) + 1


def test_bad_params_and_too_few_rows_are_refused(spark: SparkSession) -> None:
    frame = _frame(spark, _correlated(10, 5))
    with pytest.raises(IllegalArgumentException, match="k given invalid value 0"):
        CovariancePCA(k=0, inputCol="v").fit(frame)
    with pytest.raises(IllegalArgumentException, match="Output column v already exists"):
        CovariancePCA(k=2, inputCol="v", outputCol="v").fit(frame)
    with pytest.raises(ValueError, match="k=6 is more than the 5 features of v: set k to at most 5"):
        CovariancePCA(k=6, inputCol="v").fit(frame)
    with pytest.raises(ValueError, match="at least 2 rows to estimate a covariance; it was given 1"):
        CovariancePCA(k=2, inputCol="v").fit(frame.limit(1))
    with pytest.raises(ValueError, match="it was given 0"):
        CovariancePCA(k=2, inputCol="v").fit(frame.limit(0))
