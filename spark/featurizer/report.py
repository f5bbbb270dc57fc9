"""The run report: one self-contained `report.html` beside the outputs, written before the completion flag.

Everything it shows comes from the run's own outputs (metrics.json, timings.json, manifest.json,
rejected.csv, pca/); the plots are inline SVG, so the file opens offline, from S3 or from disk. Only what
a plot needs reaches the driver: a seeded per-class sample of at most MAX_POINTS rows of pca/ and the
first MAX_REJECTED rows of rejected.csv.

The page is written in XHTML syntax (every element closed, no named entities), so a browser renders it
as HTML and tests can read it with an XML parser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurizer import charts, storage
from featurizer.charts import esc
from featurizer.outputs import CSV_OPTIONS, read_parquet
from featurizer.stratified import class_counts, stratified_sample

REPORT_NAME = "report.html"
MAX_POINTS = 3000
MAX_REJECTED = 1000
SECTIONS = {
    "summary": "Run summary",
    "pca-variance": "PCA: explained variance",
    "pca-scatter": "Images on the first two principal components",
    "confusion": "Confusion matrix (test split)",
    "recall": "Recall per class (test split)",
    "stages": "Time per stage",
    "rejected": "Rejected files",
}
# A predict run's page (--model-run): it fits nothing, so it has no PCA, confusion or recall to show.
PREDICT_SECTIONS = {
    "summary": "Predict run summary",
    "predicted": "Images per predicted class",
    "stages": "Time per stage",
    "rejected": "Rejected files",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 3px 10px 3px 0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } code { font-size: 12px; }
.note { color: #666; font-size: 13px; } .legend { columns: 4 180px; font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 5px; }
.scroll { overflow-x: auto; }
"""

Point = tuple[str, float, float]


@dataclass(frozen=True)
class ReportInputs:
    metrics: dict[str, Any]
    timings: dict[str, Any]
    manifest: dict[str, Any]
    points: list[Point]
    rejected: list[tuple[str, str]]


def pca_sample(pca: DataFrame, max_points: int = MAX_POINTS, seed: int = 42) -> list[Point]:
    """(label, pca_1, pca_2) of a seeded sample of labelled images: at most max_points / classes per class,
    drawn by `stratified_sample` (every class kept, however the rows are ordered; only the sample ranked).
    With a single component, pca_2 is 0: the images lie on a line.
    """
    labelled = pca.where(F.col("label").isNotNull())
    counts = class_counts(labelled, "label")
    if not counts:
        return []
    per_class = max(1, max_points // len(counts))
    quotas = {label: min(count, per_class) for label, count in counts.items()}
    second = F.col("pca_2") if "pca_2" in pca.columns else F.lit(0.0)
    rows = (
        stratified_sample(labelled, "label", "image_id", quotas, counts, seed)
        .select("label", F.col("pca_1").alias("x"), second.alias("y"))
        .collect()
    )
    return [(row["label"], float(row["x"]), float(row["y"])) for row in rows]


def rejected_rows(spark: SparkSession, uri: str, limit: int = MAX_REJECTED) -> list[tuple[str, str]]:
    frame = spark.read.options(multiLine="true", **CSV_OPTIONS).csv(storage.spark_uri(uri))
    return [(row["path"], row["reason"]) for row in frame.limit(limit).collect()]


def write_report(
    spark: SparkSession,
    run_uri: str,
    metrics: dict[str, Any],
    timings: dict[str, Any],
    manifest: dict[str, Any],
) -> str:
    """Draw the report from the run's written outputs; returns its location."""
    predict = bool(manifest["options"].get("model_run"))
    pca = storage.join(run_uri, "pca")
    inputs = ReportInputs(
        metrics=metrics,
        timings=timings,
        manifest=manifest,
        points=([] if predict else pca_sample(read_parquet(spark, pca), seed=manifest["options"]["seed"])),
        rejected=(
            rejected_rows(spark, storage.join(run_uri, "rejected.csv"))
            if manifest["counts"]["images_rejected"]
            else []
        ),
    )
    uri = storage.join(run_uri, REPORT_NAME)
    page = render_predictions(inputs) if predict else render(inputs)
    storage.write_bytes(uri, page.encode(), content_type="text/html; charset=utf-8")
    return uri


def _table(rows: Sequence[Sequence[str]], header: Sequence[str] = (), numeric: Sequence[int] = ()) -> str:
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{esc(cell)}</td>' if i in numeric else f"<td>{esc(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if hours or minutes else [])
    return " ".join([*parts, f"{secs} s"])


def dataset_name(input_uri: str) -> str:
    """The input folder's name: `s3://b/inbox/fruits/` -> fruits."""
    return input_uri.rstrip("/").rsplit("/", 1)[-1]


def _summary(inputs: ReportInputs) -> str:
    manifest, metrics, counts = inputs.manifest, inputs.metrics, inputs.manifest["counts"]
    total = inputs.timings["total_seconds"]
    run = [
        ("dataset", dataset_name(manifest["input"])),
        ("run id", manifest["run_id"]),
        ("input", manifest["input"]),
        ("output", manifest["output"]),
        ("started", manifest["started_at"]),
        ("finished", manifest["finished_at"]),
        ("images found", f"{counts['images_found']:,}"),
        *([("refit of", source)] if (source := manifest["options"].get("from_run")) else []),
        ("images featurized", f"{counts['images_featurized']:,}"),
        (
            "from the feature store",
            f"{counts['images_reused']:,} reused, {counts['images_featurized_new']:,} featurized anew "
            f"({counts['images_through_model']:,} through the model), {counts['images_removed']:,} removed "
            "from the input since",
        ),
        ("images rejected", f"{counts['images_rejected']:,}"),
        ("images without a class", f"{counts['images_unlabelled']:,}"),
        ("classes", f"{counts['classes']:,}"),
        ("train / test images", f"{counts['train_images']:,} / {counts['test_images']:,}"),
        ("training images fitted on", f"{counts['images_fitted']:,} (--fit-max-images)"),
        ("accuracy", f"{metrics['accuracy']:.4f}"),
        ("weighted F1", f"{metrics['weighted_f1']:.4f}"),
        ("accuracy on the training split", f"{metrics['train_accuracy']:.4f}"),
        ("duration", f"{total:.1f} s ({_duration(total)})"),
    ]
    options = [(name, "" if value is None else str(value)) for name, value in manifest["options"].items()]
    versions = list(manifest["versions"].items())
    model = list(manifest["model"].items())
    return (
        _table(run)
        + "<h3>Options</h3>"
        + _table(options)
        + "<h3>Versions</h3>"
        + _table(versions)
        + "<h3>Model</h3>"
        + _table([(name, str(value)) for name, value in model])
    )


def _variance(pca: dict[str, Any]) -> str:
    rows = [
        (f"PC{i + 1}", f"{share * 100:.2f} %", f"{cumulative * 100:.2f} %")
        for i, (share, cumulative) in enumerate(
            zip(pca["explained_variance"], pca["cumulative"], strict=True)
        )
    ]
    return (
        f'<p class="note">{pca["k"]} components explain {pca["cumulative"][-1] * 100:.2f} % of the variance '
        "of the scaled features (fitted on the training split).</p>"
        + charts.variance_chart(pca["explained_variance"], pca["cumulative"])
        + _table(rows, ("component", "explained", "cumulative"), numeric=(1, 2))
    )


def _legend(classes: Sequence[str]) -> str:
    items = "".join(
        f'<div><span class="swatch" style="background:{charts.colour(i, len(classes))}"></span>'
        f"{esc(label)}</div>"
        for i, label in enumerate(classes)
    )
    return f'<div class="legend">{items}</div>'


def _scatter(inputs: ReportInputs) -> str:
    classes = list(inputs.metrics["confusion_matrix"]["labels"])
    classes += sorted({label for label, _, _ in inputs.points} - set(classes))
    featurized = inputs.manifest["counts"]["images_featurized"]
    note = (
        f'<p class="note">{len(inputs.points):,} of {featurized:,} images (a seeded sample of each class, '
        f"at most {MAX_POINTS:,} in all); images without a class are not drawn. "
        "Hover a point to see its class.</p>"
    )
    if not inputs.points:
        return note
    return note + charts.scatter(inputs.points, classes) + _legend(classes)


def _confusion(matrix: dict[str, Any]) -> str:
    labels, counts = matrix["labels"], matrix["matrix"]
    pairs = sorted(
        (
            (counts[i][j], labels[i], labels[j])
            for i in range(len(labels))
            for j in range(len(labels))
            if i != j
        ),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    confused = [(true, predicted, f"{count:,}") for count, true, predicted in pairs[:15] if count]
    table = (
        "<h3>Most frequent confusions</h3>"
        + _table(confused, ("true class", "predicted as", "images"), numeric=(2,))
        if confused
        else '<p class="note">No test image was misclassified.</p>'
    )
    return (
        '<p class="note">Rows are the true classes, columns the predicted ones; the colour is the share of '
        "the row. Hover a cell for its classes and count.</p>"
        f'<div class="scroll">{charts.heatmap(labels, counts)}</div>{table}'
    )


def _recall(per_class: dict[str, dict[str, Any]]) -> str:
    ordered = sorted(per_class.items(), key=lambda item: (item[1]["recall"], item[0]))
    bars = [
        (label, values["recall"], f"{values['recall']:.3f} (of {values['support']:,})")
        for label, values in ordered
    ]
    return (
        '<p class="note">Lowest recall first; in brackets, the test images of the class.</p>'
        + charts.hbars(bars, 1.0, "Recall per class")
    )


def _stages(timings: dict[str, Any]) -> str:
    stages, total = timings["stages"], timings["total_seconds"]
    bars = [
        (name, seconds, f"{seconds:.2f} s ({seconds / total * 100:.1f} %)")
        for name, seconds in stages.items()
    ]
    return (
        charts.hbars(bars, max(stages.values(), default=0.0), "Seconds per stage")
        + _table([(name, f"{seconds:.2f}") for name, seconds in stages.items()], ("stage", "seconds"), (1,))
        + f'<p class="note">Total {total:.2f} s, from the start of the run to the last output.</p>'
    )


def _rejected(rows: list[tuple[str, str]], total: int) -> str:
    if not total:
        return '<p class="note">Every image was decoded.</p>'
    more = f" The first {len(rows):,} are listed; rejected.csv has all of them." if len(rows) < total else ""
    return f'<p class="note">{total:,} files could not be decoded and were left out.{more}</p>' + _table(
        rows, ("path", "reason")
    )


def render(inputs: ReportInputs) -> str:
    """The report page: every section of SECTIONS, in order."""
    metrics = inputs.metrics
    bodies = {
        "summary": _summary(inputs),
        "pca-variance": _variance(metrics["pca"]),
        "pca-scatter": _scatter(inputs),
        "confusion": _confusion(metrics["confusion_matrix"]),
        "recall": _recall(metrics["per_class"]),
        "stages": _stages(inputs.timings),
        "rejected": _rejected(inputs.rejected, inputs.manifest["counts"]["images_rejected"]),
    }
    return _page(f"Run {inputs.manifest['run_id']}", inputs.manifest, SECTIONS, bodies)


def render_predictions(inputs: ReportInputs) -> str:
    """A predict run's page: every section of PREDICT_SECTIONS, in order."""
    manifest, metrics = inputs.manifest, inputs.metrics
    counts, total = manifest["counts"], inputs.timings["total_seconds"]
    accuracy = metrics["accuracy"]
    summary = [
        ("dataset", dataset_name(manifest["input"])),
        ("run id", manifest["run_id"]),
        ("input", manifest["input"]),
        ("output", manifest["output"]),
        ("classified with the pipeline of", metrics["model_run"]),
        ("started", manifest["started_at"]),
        ("finished", manifest["finished_at"]),
        ("images found", f"{counts['images_found']:,}"),
        (
            "images featurized",
            f"{counts['images_featurized']:,} ({counts['images_reused']:,} reused from the feature store, "
            f"{counts['images_through_model']:,} through the model)",
        ),
        ("images rejected", f"{counts['images_rejected']:,}"),
        ("images classified", f"{metrics['images_classified']:,}"),
        (
            "accuracy against their folder's class",
            "no image is in a folder named after a class"
            if accuracy is None
            else f"{accuracy:.4f} (of {metrics['images_scored']:,} images)",
        ),
        ("duration", f"{total:.1f} s ({_duration(total)})"),
    ]
    model = [(name, str(value)) for name, value in manifest["model"].items()]
    bars = [(label, n, f"{n:,}") for label, n in sorted(metrics["predicted"].items(), key=lambda x: -x[1])]
    bodies = {
        "summary": _table(summary) + "<h3>Model</h3>" + _table(model),
        "predicted": charts.hbars(bars, max((n for _, n, _ in bars), default=0), "Images per class"),
        "stages": _stages(inputs.timings),
        "rejected": _rejected(inputs.rejected, counts["images_rejected"]),
    }
    return _page(f"Predict run {manifest['run_id']}", manifest, PREDICT_SECTIONS, bodies)


def _page(name: str, manifest: dict[str, Any], titles: dict[str, str], bodies: dict[str, str]) -> str:
    sections = "".join(
        f'<section id="{key}"><h2>{esc(title)}</h2>{bodies[key]}</section>' for key, title in titles.items()
    )
    title = f"{name} of {dataset_name(manifest['input'])}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{esc(title)}</h1>{sections}</body></html>\n"
    )
