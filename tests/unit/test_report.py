"""The report page from metrics, timings and a manifest: every section, the numbers of the JSON files, plots.

The page is XHTML, so the tests read it with an XML parser; inline SVG plots are part of that tree.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from featurizer.evaluate import classification_metrics
from featurizer.report import SECTIONS, ReportInputs, render
from tests.report_page import SVG, confusion_cells, parse, recall_bars, rows, section, summary, text

STAGES = {
    "read": 41.237,
    "featurize": 512.8,
    "persist": 37.514,
    "fit": 88.1,
    "evaluate": 9.6,
    "write": 65.049,
}


def labels_of(count: int) -> list[str]:
    special = ['Kiwi, <golden> & "ripe"', "Pêche (jaune)"]
    return (special + [f"Class {i:03d}" for i in range(count)])[:count]


def synthetic_inputs(classes: int, rejected: int = 3) -> ReportInputs:
    labels = labels_of(classes)
    rng = np.random.default_rng(classes)
    matrix = np.diag(rng.integers(5, 40, classes))
    for i in range(0, classes, 2):  # every other class loses a few images to the next one
        matrix[i, (i + 1) % classes] += 3
    explained = [0.3, 0.15, 0.1, 0.05, 0.03]
    metrics: dict[str, Any] = {
        "train_images": int(matrix.sum()) * 4,
        "test_images": int(matrix.sum()),
        **classification_metrics(matrix, labels),
        "train_accuracy": 0.99,
        "pca": {"k": 5, "explained_variance": explained, "cumulative": np.cumsum(explained).tolist()},
    }
    featurized = metrics["train_images"] + metrics["test_images"]
    manifest = {
        "run_id": "r1",
        "input": "s3://data/inbox/fruits/",
        "output": "s3://data/runs/fruits/r1/",
        "started_at": "2026-11-24T10:00:00+00:00",
        "finished_at": "2026-11-24T10:12:34+00:00",
        "counts": {
            "images_found": featurized + rejected,
            "images_featurized": featurized,
            "images_rejected": rejected,
            "images_unlabelled": 0,
            "images_through_model": featurized - 2,
            "images_reused": 2,
            "images_featurized_new": featurized - 2,
            "images_removed": 1,
            "train_images": metrics["train_images"],
            "images_fitted": metrics["train_images"] // 2,
            "test_images": metrics["test_images"],
            "classes": classes,
        },
        "options": {"engine": "onnx", "pca_k": 5, "pca_variance": None, "seed": 42},
        "versions": {"featurizer": "0.1.0", "spark": "3.5.9"},
        "model": {"weights": "imagenet", "weights_sha256": "ab" * 32},
    }
    points = [
        (labels[i % classes], float(rng.normal(i % 7)), float(rng.normal())) for i in range(featurized // 2)
    ]
    return ReportInputs(
        metrics=metrics,
        timings={"stages": STAGES, "total_seconds": 754.3},
        manifest=manifest,
        points=points,
        rejected=[
            (f"s3://data/inbox/fruits/Banana/bad{i}.jpg", "empty file (0 bytes)") for i in range(rejected)
        ],
    )


@pytest.fixture(params=[3, 130], ids=["3-classes", "130-classes"])
def inputs(request: pytest.FixtureRequest) -> ReportInputs:
    return synthetic_inputs(request.param)


def test_every_section_is_present_in_order(inputs: ReportInputs) -> None:
    root = parse(render(inputs))

    assert [s.get("id") for s in root.iter("section")] == list(SECTIONS)
    for key, title in SECTIONS.items():
        assert text(section(root, key).find("h2")) == title
        assert len(text(section(root, key))) > len(title) + 20  # and something under it


def test_summary_shows_the_manifest_counts_and_the_metrics(inputs: ReportInputs) -> None:
    shown = summary(parse(render(inputs)))
    counts, metrics = inputs.manifest["counts"], inputs.metrics

    assert shown["dataset"] == "fruits" and shown["run id"] == "r1"
    assert shown["images found"] == f"{counts['images_found']:,}"
    assert shown["images featurized"] == f"{counts['images_featurized']:,}"
    assert shown["images rejected"] == f"{counts['images_rejected']:,}"
    assert shown["classes"] == f"{counts['classes']:,}"
    assert float(shown["accuracy"]) == pytest.approx(metrics["accuracy"], abs=5e-5)
    assert float(shown["weighted F1"]) == pytest.approx(metrics["weighted_f1"], abs=5e-5)
    assert shown["accuracy on the training split"] == "0.9900"
    assert shown["duration"] == "754.3 s (12 min 34 s)"
    assert shown["weights_sha256"] == "ab" * 32 and shown["engine"] == "onnx" and shown["spark"] == "3.5.9"


def test_variance_table_and_chart_follow_metrics_pca(inputs: ReportInputs) -> None:
    variance = section(parse(render(inputs)), "pca-variance")
    pca = inputs.metrics["pca"]

    table = rows(variance)
    assert [r[0] for r in table] == [f"PC{i}" for i in range(1, 6)]
    assert [float(r[1].rstrip(" %")) for r in table] == pytest.approx(
        [v * 100 for v in pca["explained_variance"]], abs=0.005
    )
    assert [float(r[2].rstrip(" %")) for r in table] == pytest.approx(
        [v * 100 for v in pca["cumulative"]], abs=0.005
    )
    assert len(list(variance.iter(f"{SVG}rect"))) == pca["k"]


def test_confusion_cells_carry_the_matrix_counts(inputs: ReportInputs) -> None:
    root = parse(render(inputs))
    labels = inputs.metrics["confusion_matrix"]["labels"]
    matrix = inputs.metrics["confusion_matrix"]["matrix"]

    expected = {(labels[i], labels[j]): c for i, row in enumerate(matrix) for j, c in enumerate(row) if c}
    assert confusion_cells(root) == expected
    most = sorted(((c, t, p) for (t, p), c in expected.items() if t != p), key=lambda x: (-x[0], x[1], x[2]))
    assert rows(section(root, "confusion")) == [[t, p, str(c)] for c, t, p in most[:15]]


def test_recall_bars_match_per_class_metrics(inputs: ReportInputs) -> None:
    per_class = inputs.metrics["per_class"]

    assert recall_bars(parse(render(inputs))) == {
        label: f"{values['recall']:.3f} (of {values['support']:,})" for label, values in per_class.items()
    }


def test_stage_times_equal_timings(inputs: ReportInputs) -> None:
    stages = section(parse(render(inputs)), "stages")

    assert {name: float(seconds) for name, seconds in rows(stages)} == pytest.approx(STAGES, abs=0.005)
    assert "Total 754.30 s" in text(stages)


def test_rejected_files_are_listed_with_their_reasons(inputs: ReportInputs) -> None:
    rejected = section(parse(render(inputs)), "rejected")

    assert [tuple(r) for r in rows(rejected)] == inputs.rejected
    assert "3 files could not be decoded" in text(rejected)


def test_scatter_draws_every_sampled_point_in_one_colour_per_class(inputs: ReportInputs) -> None:
    scatter = section(parse(render(inputs)), "pca-scatter")
    classes = len(inputs.metrics["per_class"])

    groups = [g for g in scatter.iter(f"{SVG}g") if g.find(f"{SVG}title") is not None]
    assert sum(len(g.findall(f"{SVG}circle")) for g in groups) == len(inputs.points)
    assert len({g.get("fill") for g in groups}) == len(groups) == classes
    assert len(scatter.findall(".//div[@class='legend']/div")) == classes


def test_labels_are_escaped_and_the_page_stays_small_with_130_classes() -> None:
    page = render(synthetic_inputs(130))

    assert (
        'Kiwi, &lt;golden&gt; &amp; "ripe"' in page or "Kiwi, &lt;golden&gt; &amp; &quot;ripe&quot;" in page
    )
    assert len(page.encode()) < 1_500_000
    heatmap = section(parse(page), "confusion").find(f".//{SVG}svg")
    assert heatmap is not None
    assert [text(t) for t in heatmap.iter(f"{SVG}text")] == ["predicted class", "true class"]  # no names
    assert float(heatmap.get("width", "0")) < 1000


def test_a_run_without_rejected_files_says_so() -> None:
    root = parse(render(synthetic_inputs(3, rejected=0)))

    assert text(section(root, "rejected")).endswith("Every image was decoded.")


def test_every_plot_is_a_sized_svg_with_content(inputs: ReportInputs) -> None:
    plots = list(parse(render(inputs)).iter(f"{SVG}svg"))

    assert len(plots) == 5  # variance, scatter, confusion, recall, stages
    for plot in plots:
        assert float(plot.get("width", "0")) > 100 and float(plot.get("height", "0")) > 50
        assert len(list(plot.iter())) > 10
        assert re.fullmatch(r"0 0 \d+ \d+", plot.get("viewBox", ""))
