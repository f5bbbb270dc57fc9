"""Fit: a Spark ML Pipeline StringIndexer -> StandardScaler -> PCA -> LogisticRegression -> IndexToString.

PCA is fitted by `CovariancePCA` (featurizer.pca), which gives Spark ML's own PCAModel in a fraction of
Spark's time.

The pipeline reads a vector column; `as_model_input` adds it to rows of the `features/` Parquet a run writes
(array<float>), so `PipelineModel.load(...).transform(as_model_input(features))` predicts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import IndexToString, StandardScaler, StringIndexer, StringIndexerModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurizer.options import FEATURE_COUNT
from featurizer.pca import CovariancePCA

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


def choose_k(train: DataFrame, variance: float) -> int:
    """The smallest number of components whose cumulative explained variance reaches `variance`."""
    pca = CovariancePCA(k=FEATURE_COUNT, inputCol=SCALED, outputCol=PCA_COLUMN)
    full = Pipeline(stages=[scaler(), pca]).fit(train)
    cumulative = np.cumsum(full.stages[-1].explainedVariance.toArray())
    return int(min(np.searchsorted(cumulative, variance - 1e-12) + 1, FEATURE_COUNT))


def index_labels(train: DataFrame) -> StringIndexerModel:
    indexer = StringIndexer(
        inputCol="label", outputCol=LABEL_INDEX, handleInvalid="keep", stringOrderType="alphabetAsc"
    ).fit(train)
    if len(indexer.labels) < 2:
        found = ", ".join(repr(x) for x in indexer.labels) or "none"
        raise NotEnoughData(
            f"the training split holds {len(indexer.labels)} class(es) ({found}); a classifier needs at "
            "least 2: put each class's images in its own sub-folder of the input"
        )
    return indexer


def fit(
    train: DataFrame, k: int, classify_on: Literal["scaled", "pca"], reg_param: float, max_iter: int
) -> PipelineModel:
    """Fit on labelled training rows (with `as_model_input` applied): the job's bounded sample of them."""
    indexer = index_labels(train)
    stages = [
        indexer,
        scaler(),
        CovariancePCA(k=k, inputCol=SCALED, outputCol=PCA_COLUMN),
        LogisticRegression(
            featuresCol=SCALED if classify_on == "scaled" else PCA_COLUMN,
            labelCol=LABEL_INDEX,
            regParam=reg_param,
            elasticNetParam=0.0,
            maxIter=max_iter,
            # Scaled features have unit variance already, so LR's own standardization would change
            # neither the penalty nor the optimum, only add work; PCA components need it for the penalty
            # to weigh them alike.
            standardization=classify_on != "scaled",
        ),
        IndexToString(inputCol="prediction", outputCol=PREDICTED_LABEL, labels=indexer.labels),
    ]
    return Pipeline(stages=stages).fit(train)


def class_labels(model: PipelineModel) -> list[str]:
    return list(model.stages[INDEXER_STAGE].labels)


def explained_variance(model: PipelineModel) -> list[float]:
    return [float(x) for x in model.stages[PCA_STAGE].explainedVariance.toArray()]
