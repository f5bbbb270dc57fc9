"""Predict: new images classified by the pipeline a completed run trained (`--model-run`).

The images are featurized as a run featurizes them (the feature store reuses the ones it knows), and the
trained run's saved PipelineModel (scaler, PCA, classifier) gives each one its class, its probability and
the three likeliest classes. Features are only comparable when they come from the same model file and
the same preprocessing, so any other pair is refused before Spark starts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from featurizer import storage
from featurizer.artifact import ModelArtifact, model_for, onnx_model
from featurizer.model import PREDICTED_LABEL, as_model_input, class_labels
from featurizer.options import JobOptions
from featurizer.sources import model_of

TOP = 3  # the likeliest classes each prediction lists
PROBABILITY = "probability"  # LogisticRegression's output column


class IncompatibleModel(ValueError):
    """The trained run cannot classify: it fitted no pipeline, or its features came from another model or
    preprocessing than the predict run's."""


class NothingToPredict(ValueError):
    """Every listed image was rejected: there is nothing to classify."""


def settled(options: JobOptions, trained: dict[str, Any]) -> tuple[JobOptions, ModelArtifact]:
    """The predict run's options (the trained run's engine and precision) and its model: `--model` if
    given, else the trained run's own model file where it can still be read, else the one its weights
    give (an fp32 export); IncompatibleModel unless its features are the trained run's."""
    model_run = str(options.model_run)
    if source := trained["options"].get("model_run"):
        raise IncompatibleModel(
            f"--model-run {model_run} is a predict run, which fitted no pipeline: give the run it "
            f"predicted with ({source}), or another run that trained one"
        )
    recorded = model_of(trained)
    engine = trained["options"].get("engine", "onnx")
    options = replace(options, engine=engine, precision=recorded.precision)
    if options.model:
        model = onnx_model(options.model, precision=None)
    elif _readable(recorded.source):
        as_file = {"model": recorded.source} if engine == "onnx" else {"weights": recorded.source}
        model = model_for(replace(options, **as_file))
    elif recorded.precision != "fp32" or recorded.weights_source == "unknown":
        raise IncompatibleModel(
            f"--model-run {model_run} featurized with {recorded.source}, which cannot be read now: pass "
            f"that model file as --model (its sha256 is {recorded.sha256})"
        )
    else:
        model = model_for(replace(options, weights=recorded.weights_source))
    check_compatible(recorded, model, model_run)
    return replace(options, model=model.source if engine == "onnx" else None), model


def _readable(uri: str) -> bool:
    try:
        return storage.exists(uri)
    except Exception:  # botocore: access, endpoint; the model is then found as a run finds it
        return False


def check_compatible(recorded: ModelArtifact, model: ModelArtifact, model_run: str) -> None:
    """IncompatibleModel, naming both, unless `model` is the model file and preprocessing that
    featurized the trained run."""
    if (recorded.sha256, recorded.preprocessing) == (model.sha256, model.preprocessing):
        return
    raise IncompatibleModel(
        f"--model-run {model_run} was trained on features of {_named(recorded)}, but this predict run "
        f"would featurize with {_named(model)}: their features are not comparable. Predict with that "
        f"run's model file (--model {recorded.source}), or train a run on this model and predict with it"
    )


def _named(model: ModelArtifact) -> str:
    return (
        f"model {model.source} ({model.precision}, sha256 {model.sha256[:16]}...) and preprocessing "
        f"version {model.preprocessing}"
    )


def load_pipeline(model_run: str) -> PipelineModel:
    return PipelineModel.load(storage.spark_uri(storage.join(model_run, "model")))


def predictions(pipeline: PipelineModel, features: DataFrame) -> DataFrame:
    """image_id, path, label (the folder's, if any), predicted_label, its probability and the TOP
    likeliest classes (label, probability), for every row of a run's `features/`: one pass."""
    classes = F.array(*(F.lit(label) for label in class_labels(pipeline)))
    probabilities = vector_to_array(F.col(PROBABILITY))
    ranked = F.sort_array(
        F.zip_with(probabilities, classes, lambda p, c: F.struct(p.alias("probability"), c.alias("label"))),
        asc=False,
    )
    top = F.transform(F.slice(ranked, 1, TOP), lambda x: F.struct(x["label"], x["probability"]))
    return pipeline.transform(as_model_input(features)).select(
        "image_id",
        "path",
        "label",
        PREDICTED_LABEL,
        F.element_at(probabilities, F.col("prediction").cast("int") + 1).alias("probability"),
        top.alias("top_labels"),
    )


def as_csv(predicted: DataFrame) -> DataFrame:
    """predictions.csv's columns: the top classes spread out as label_<n>, probability_<n>."""
    top = [
        column
        for n in range(1, TOP + 1)
        for column in (
            F.col("top_labels")[n - 1]["label"].alias(f"label_{n}"),
            F.col("top_labels")[n - 1]["probability"].alias(f"probability_{n}"),
        )
    ]
    return predicted.select("image_id", "path", "label", PREDICTED_LABEL, "probability", *top)


def prediction_metrics(predicted: DataFrame, pipeline: PipelineModel, model_run: str) -> dict[str, Any]:
    """metrics.json of a predict run: images per predicted class and, for the images in a folder named
    after one of the classes, the share predicted as their folder."""
    classes = class_labels(pipeline)
    label = F.col("label")
    # At most 4 rows per class reach the driver, however many folders the input has.
    kind = (
        F.when(label.isin(*classes), F.when(label == F.col(PREDICTED_LABEL), "correct").otherwise("wrong"))
        .when(label.isNotNull(), "other")
        .otherwise("unlabelled")
    )
    rows = predicted.groupBy(PREDICTED_LABEL, kind.alias("kind")).count().collect()
    per_class = dict.fromkeys(classes, 0)
    kinds = dict.fromkeys(("correct", "wrong", "other", "unlabelled"), 0)
    for row in rows:
        per_class[row[PREDICTED_LABEL]] += row["count"]
        kinds[row["kind"]] += row["count"]
    scored, correct = kinds["correct"] + kinds["wrong"], kinds["correct"]
    if not rows:
        raise NothingToPredict(
            "every image of the input was rejected, so none was classified: rejected.csv says why each was"
        )
    return {
        "model_run": model_run,
        "classes": classes,
        "images_classified": sum(per_class.values()),
        "predicted": per_class,
        "images_scored": scored,
        "images_in_other_folders": kinds["other"],
        "accuracy": correct / scored if scored else None,
    }
