"""Fit: a Spark ML Pipeline StringIndexer -> StandardScaler -> PCA -> LogisticRegression -> IndexToString.

The scaler and PCA are Spark ML's own StandardScalerModel and PCAModel, built from the moments of the
features (featurizer.pca) that one pass over the sample gives: Spark's StandardScaler.fit and PCA.fit
would each make their own pass, PCA's in the JVM's LAPACK. The indexer is built from the classes the
sample's quotas name, and only LogisticRegression iterates over the rows.

The pipeline reads a vector column; `as_model_input` adds it to rows of the `features/` Parquet a run writes
(array<float>), so `PipelineModel.load(...).transform(as_model_input(features))` predicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import (
    IndexToString,
    StandardScaler,
    StandardScalerModel,
    StringIndexerModel,
)
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import DenseVector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurizer.pca import CovariancePCA, Moments, components_for, moments

# Positions of the fitted stages in the PipelineModel `fit` returns.
INDEXER_STAGE, PCA_STAGE = 0, 2
FEATURES_VECTOR = "features_vector"
LABEL_INDEX = "label_index"
SCALED = "scaled"
PCA_COLUMN = "pca"
PREDICTED_LABEL = "predicted_label"


class NotEnoughData(ValueError):
    """The training or test split cannot support a classifier."""


def as_model_input(features: DataFrame) -> DataFrame:
    return features.withColumn(FEATURES_VECTOR, array_to_vector(F.col("features")))


def as_features(vectors: DataFrame) -> DataFrame:
    """The inverse of `as_model_input` without its `features`: the array<float> column, bit for bit.

    Every float32 is a float64 exactly, so the round trip gives back the model's output unchanged. The
    column and its elements are declared non-null (vector_to_array's declaration, and the truth).
    """
    features = vector_to_array(F.col(FEATURES_VECTOR), dtype="float32")
    return vectors.withColumn("features", features).drop(FEATURES_VECTOR)


def scaler() -> StandardScaler:
    """The job's standardization of the features (the pipeline's second stage)."""
    return StandardScaler(inputCol=FEATURES_VECTOR, outputCol=SCALED, withMean=True, withStd=True)


def fitted_scaler(found: Moments) -> StandardScalerModel:
    """What `scaler().fit` gives on the vectors whose moments are `found` (the same unbiased standard
    deviations, to rounding), with no pass over them."""
    estimator = scaler()
    model = estimator._new_java_obj(
        "org.apache.spark.ml.feature.StandardScalerModel",
        estimator.uid,
        DenseVector(found.std()),
        DenseVector(found.mean),
    )
    return estimator._copyValues(StandardScalerModel(model))


def label_indexer(labels: Iterable[str]) -> StringIndexerModel:
    """The pipeline's first stage for these classes, as `StringIndexer(stringOrderType="alphabetAsc")`
    fits it (Java's order: UTF-16 code units), with no pass over the rows that hold them."""
    ordered = sorted(labels, key=lambda label: label.encode("utf-16-be"))
    if len(ordered) < 2:
        found = ", ".join(repr(x) for x in ordered) or "none"
        raise NotEnoughData(
            f"the training split holds {len(ordered)} class(es) ({found}); a classifier needs at "
            "least 2: put each class's images in its own sub-folder of the input"
        )
    return StringIndexerModel.from_labels(
        ordered, inputCol="label", outputCol=LABEL_INDEX, handleInvalid="keep"
    )


def fit(
    train: DataFrame,
    labels: Iterable[str],
    k: int | None,
    variance: float | None,
    classify_on: Literal["scaled", "pca"],
    reg_param: float,
    max_iter: int,
) -> PipelineModel:
    """Fit on labelled training rows (with `as_model_input` applied): the job's bounded sample of them,
    whose classes are `labels`. PCA keeps `k` components, or (with `variance`) the fewest that explain
    that share of the variance."""
    indexer = label_indexer(labels)
    found = moments(train, FEATURES_VECTOR)
    assert found is not None  # label_indexer has refused a split of fewer than 2 classes
    standardized = found.standardized()
    kept = components_for(standardized, variance) if variance else k
    pca = CovariancePCA(k=kept, inputCol=SCALED, outputCol=PCA_COLUMN).fit_moments(standardized)
    prepared = [indexer, fitted_scaler(found), pca]
    classifier = LogisticRegression(
        featuresCol=SCALED if classify_on == "scaled" else PCA_COLUMN,
        labelCol=LABEL_INDEX,
        regParam=reg_param,
        elasticNetParam=0.0,
        maxIter=max_iter,
        # Scaled features have unit variance already, so LR's own standardization would change neither
        # the penalty nor the optimum, only add work; PCA components need it for the penalty to weigh
        # them alike.
        standardization=classify_on != "scaled",
    ).fit(PipelineModel(prepared).transform(train))
    predicted = IndexToString(inputCol="prediction", outputCol=PREDICTED_LABEL, labels=indexer.labels)
    return PipelineModel([*prepared, classifier, predicted])


def class_labels(model: PipelineModel) -> list[str]:
    return list(model.stages[INDEXER_STAGE].labels)


def components(model: PipelineModel) -> int:
    """The number of PCA components the pipeline keeps."""
    return int(model.stages[PCA_STAGE].getK())


def explained_variance(model: PipelineModel) -> list[float]:
    return [float(x) for x in model.stages[PCA_STAGE].explainedVariance.toArray()]
