"""PCA for the pipeline: Spark ML's own PCAModel, fitted from a covariance that numpy computes.

Spark ML's `PCA.fit` builds the covariance with a rank-one update of the packed 1280 x 1280 matrix for
every row, then takes a full SVD of it in whatever LAPACK the driver's JVM finds (Java's own unless the
machine has a native one): fit's largest cost on machines without one (`bench/performance.py --pca`,
figures in docs/performance.md).

Here the workers receive their rows as Arrow batches and numpy (with the OpenBLAS its wheel carries)
computes each partition's row count, mean and centred cross-products in one matrix product; those are
merged in a tree and the driver takes the covariance's eigenvectors. The result is the same model (the
same components up to sign, the same explained variance) as Spark ML's `PCAModel`: it transforms in
the JVM and saves and loads as any PCAModel does, so the saved pipeline needs nothing of this project.
The same moments, standardized, give the PCA of standardized vectors without another pass over them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from py4j.java_gateway import JavaObject
from pyspark.ml.feature import PCA, PCAModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from featurizer.partitioning import arrow_batches, task_slots

MOMENTS_SCHEMA = "rows long, mean binary, scatter binary"
ROWS_PER_BATCH = 1024  # 10 MB of doubles at 1280 features
TREE_FAN_IN = 8


@dataclass(frozen=True)
class Moments:
    """Row count, column means and scatter matrix (centred cross-products) of a set of vectors."""

    rows: int
    mean: np.ndarray
    scatter: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """Centred on the first row before averaging: a constant column's mean is then exact, and its
        variance exactly 0 (as Spark's scaler finds it), not rounding's 1e-30."""
        shifted = values - values[0]
        offset = shifted.mean(axis=0)
        centred = shifted - offset
        return cls(len(values), values[0] + offset, centred.T @ centred)

    def std(self) -> np.ndarray:
        """The columns' unbiased standard deviations, as Spark's StandardScaler takes them."""
        return np.sqrt(np.diag(self.scatter) / max(self.rows - 1, 1))

    def standardized(self) -> Moments:
        """The moments of the same vectors centred and divided by their standard deviations, as Spark's
        StandardScaler(withMean=True, withStd=True) transforms them: a constant column becomes 0."""
        std = self.std()
        inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        return Moments(self.rows, np.zeros_like(self.mean), self.scatter * np.outer(inverse, inverse))

    def __add__(self, other: Moments) -> Moments:
        """The moments of both sets together (Chan, Golub and LeVeque's pairwise update): each part is
        centred on its own mean, so large means do not cancel the variance away."""
        if self.mean.shape != other.mean.shape:
            raise ValueError(_different_sizes(len(self.mean), len(other.mean)))
        rows = self.rows + other.rows
        delta = other.mean - self.mean
        return Moments(
            rows,
            self.mean + delta * (other.rows / rows),
            self.scatter + other.scatter + np.outer(delta, delta) * (self.rows * other.rows / rows),
        )


def _different_sizes(one: int, other: int) -> str:
    return f"PCA input vectors differ in size ({one} and {other}): every vector must have the same size"


def _partition_moments(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One row of moments per partition (none for an empty partition)."""
    total: Moments | None = None
    for batch in batches:
        if not batch.num_rows:
            continue
        column = batch.column(0)
        if column.null_count:
            raise ValueError("PCA input has null vectors: drop or fill those rows before fitting")
        sizes = np.diff(column.offsets.to_numpy())
        if sizes.min() != sizes.max():
            raise ValueError(_different_sizes(sizes.min(), sizes.max()))
        part = Moments.of(column.flatten().to_numpy().reshape(batch.num_rows, -1))
        total = part if total is None else total + part
    if total is not None:
        yield pa.RecordBatch.from_pydict(
            {"rows": [total.rows], "mean": [total.mean.tobytes()], "scatter": [total.scatter.tobytes()]}
        )


def _from_row(row: Row) -> Moments:
    rows, mean, scatter = row
    means = np.frombuffer(mean)
    return Moments(rows, means, np.frombuffer(scatter).reshape(len(means), len(means)))


def _add(left: Moments | None, right: Moments | None) -> Moments | None:
    if left is None:
        return right
    return left if right is None else left + right


def moments(frame: DataFrame, column: str) -> Moments | None:
    """The moments of a vector column (None when it has no rows), merged on the executors in a tree.

    Each partition's matrix is 13 MB at 1280 features, whatever its rows: the input is coalesced to
    one partition per task slot (thousands of cached partitions would each send one), and the tree is
    deep enough (fan-in of about `TREE_FAN_IN`) that the driver receives a handful, not one per slot.
    Arrow batches of `ROWS_PER_BATCH` rows keep a Python worker's copies small beside the model it
    keeps loaded (Spark's default, 10,000 rows, is 100 MB of doubles, and a copy of it once centred).
    """
    spark = frame.sparkSession
    partials = (
        frame.coalesce(task_slots(spark))
        .select(vector_to_array(F.col(column)).alias("values"))
        .mapInArrow(_partition_moments, MOMENTS_SCHEMA)
    )
    with arrow_batches(spark, ROWS_PER_BATCH):  # read when the plan runs, below
        parts = partials.rdd.map(_from_row)
        depth = max(2, math.ceil(math.log(max(parts.getNumPartitions(), 2), TREE_FAN_IN)))
        return parts.treeAggregate(None, _add, _add, depth)


def principal_components(found: Moments, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(the covariance's k leading eigenvectors as columns, each component's share of the variance).

    The shares are those of Spark's RowMatrix: the covariance's singular values (for a covariance, the
    absolute eigenvalues) over their sum, the first k of them. Each component's sign is chosen so that
    its largest loading is positive: the projection's signs do not depend on the eigensolver's choice.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(found.scatter / (found.rows - 1))
    variances = np.abs(eigenvalues)
    order = np.argsort(variances)[::-1][:k]
    components = eigenvectors[:, order]
    largest = components[np.argmax(np.abs(components), axis=0), np.arange(k)]
    return components * np.sign(largest), variances[order] / variances.sum()


def components_for(found: Moments, variance: float) -> int:
    """The fewest components whose cumulative share of the variance (as `principal_components` gives
    it) reaches `variance`."""
    variances = np.sort(np.abs(np.linalg.eigvalsh(found.scatter / (found.rows - 1))))[::-1]
    cumulative = np.cumsum(variances / variances.sum())
    return int(min(np.searchsorted(cumulative, variance - 1e-12) + 1, len(variances)))


class CovariancePCA(PCA):
    """Spark ML's PCA estimator (same params, same PCAModel) that fits without the JVM's LAPACK.

    What it is for is the fitted PCAModel; the estimator itself, saved unfitted, loads back as Spark's
    PCA (its params and metadata are Spark's).
    """

    def _fit_java(self, dataset: DataFrame) -> JavaObject:
        # Spark's own checks first, with Spark's messages: k > 0, a vector input, a new output column.
        self._transfer_params_to_java()
        self._java_obj.transformSchema(dataset._jdf.schema())
        return self._java_model(moments(dataset, self.getInputCol()))

    def fit_moments(self, found: Moments) -> PCAModel:
        """The PCAModel of the vectors whose moments are `found`, with no pass over them."""
        self._transfer_params_to_java()
        return self._copyValues(self._create_model(self._java_model(found)))

    def _java_model(self, found: Moments | None) -> JavaObject:
        if found is None or found.rows < 2:
            rows = found.rows if found else 0
            raise ValueError(f"PCA needs at least 2 rows to estimate a covariance; it was given {rows}")
        k, features = self.getK(), len(found.mean)
        if k > features:
            raise ValueError(
                f"PCA k={k} is more than the {features} features of {self.getInputCol()}: "
                f"set k to at most {features}"
            )
        components, explained = principal_components(found, k)
        return self._new_java_obj(
            "org.apache.spark.ml.feature.PCAModel",
            self.uid,
            DenseMatrix(features, k, components.ravel(order="F")),
            DenseVector(explained),
        )
