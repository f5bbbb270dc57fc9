"""report.html of a real run: its numbers are those of the run's files, and headless Chromium renders it;
the scatter plot's sample, drawn by Spark."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from pyspark.sql import SparkSession

from featurizer.cli import main as cli
from featurizer.manifest import COMPLETED_FLAG
from featurizer.report import REPORT_NAME, SECTIONS, pca_sample
from tests.report_page import SVG, confusion_cells, parse, recall_bars, rows, section, summary

WINDOW = (1280, 2000)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def page(onnx_run: Path) -> ET.Element:
    return parse((onnx_run / REPORT_NAME).read_text(encoding="utf-8"))


def test_the_report_is_written_before_the_flag_which_points_to_it(onnx_run: Path) -> None:
    report, flag = onnx_run / REPORT_NAME, onnx_run / COMPLETED_FLAG

    assert report.stat().st_mtime_ns <= flag.stat().st_mtime_ns
    assert read_json(flag)["report"] == f"{onnx_run}/{REPORT_NAME}"


def test_every_section_is_there(page: ET.Element) -> None:
    assert [s.get("id") for s in page.iter("section")] == list(SECTIONS)


def test_summary_numbers_are_those_of_the_run_files(page: ET.Element, onnx_run: Path) -> None:
    shown = summary(page)
    manifest, metrics = read_json(onnx_run / "manifest.json"), read_json(onnx_run / "metrics.json")
    total = read_json(onnx_run / "timings.json")["total_seconds"]

    for name in ("images_found", "images_featurized", "images_rejected", "classes"):
        assert shown[name.replace("_", " ")] == f"{manifest['counts'][name]:,}"
    assert shown["accuracy"] == f"{metrics['accuracy']:.4f}"
    assert shown["weighted F1"] == f"{metrics['weighted_f1']:.4f}"
    assert shown["duration"].startswith(f"{total:.1f} s")
    assert shown["weights_sha256"] == manifest["model"]["weights_sha256"]
    assert shown["pyspark"] == manifest["versions"]["pyspark"]


def test_plots_carry_metrics_and_timings(page: ET.Element, onnx_run: Path) -> None:
    metrics, timings = read_json(onnx_run / "metrics.json"), read_json(onnx_run / "timings.json")
    labels, matrix = metrics["confusion_matrix"]["labels"], metrics["confusion_matrix"]["matrix"]

    assert confusion_cells(page) == {
        (labels[i], labels[j]): count for i, row in enumerate(matrix) for j, count in enumerate(row) if count
    }
    assert recall_bars(page) == {
        label: f"{values['recall']:.3f} (of {values['support']:,})"
        for label, values in metrics["per_class"].items()
    }
    variance = [row[1] for row in rows(section(page, "pca-variance"))]
    assert variance == [f"{v * 100:.2f} %" for v in metrics["pca"]["explained_variance"]]
    stages = dict(rows(section(page, "stages")))
    assert stages == {name: f"{seconds:.2f}" for name, seconds in timings["stages"].items()}


def test_the_scatter_samples_the_pca_output(page: ET.Element, onnx_run: Path) -> None:
    counts = read_json(onnx_run / "manifest.json")["counts"]
    circles = list(section(page, "pca-scatter").iter(f"{SVG}circle"))

    assert len(circles) == counts["images_featurized"] - counts["images_unlabelled"]  # under the cap: all


def test_rejected_files_are_those_of_rejected_csv(page: ET.Element, onnx_run: Path) -> None:
    rejected = pd.read_csv(onnx_run / "rejected.csv")

    assert rows(section(page, "rejected")) == rejected[["path", "reason"]].values.tolist()


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed: `apt-get install -y chromium` (.ci/run installs it)")
    return found


def test_headless_chromium_renders_the_report(onnx_run: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        (onnx_run / REPORT_NAME).as_uri(),
    ]

    result = subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0 and screenshot.is_file(), result.stderr[-2000:]
    image = Image.open(screenshot).convert("RGB")
    assert image.size == WINDOW
    colours = image.getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert (
        colours is not None and len(colours) > 50
    )  # text, bars, points of several classes: not a blank page
    white = sum(count for count, rgb in colours if rgb == (255, 255, 255))
    assert white < 0.97 * WINDOW[0] * WINDOW[1]


def test_scale_from_this_run_alone_asks_for_another_size(
    onnx_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["scale", str(onnx_run)]) == 2
    assert "at least two runs of different sizes are needed" in capsys.readouterr().err


def test_the_sample_is_capped_seeded_and_covers_every_class(spark: SparkSession) -> None:
    # Rows stored class by class (as pca/ is when written in path order): a cut at the end would drop the
    # last classes; the cap must be per class.
    pca = spark.createDataFrame(
        [(f"i{i}", f"c{i // 100:03d}", float(i), float(-i)) for i in range(13_000)]
        + [(f"u{i}", None, 0.0, 0.0) for i in range(50)],
        "image_id string, label string, pca_1 double, pca_2 double",
    ).coalesce(1)

    sample = pca_sample(pca, max_points=1300, seed=7)

    per_class = Counter(label for label, _, _ in sample)
    assert set(per_class) == {f"c{i:03d}" for i in range(130)}
    assert max(per_class.values()) <= 10 and len(sample) <= 1300
    assert all(y == -x for _, x, y in sample)
    assert sorted(pca_sample(pca.repartition(7), max_points=1300, seed=7)) == sorted(sample)
