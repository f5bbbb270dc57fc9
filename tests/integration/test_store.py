"""The feature store (issue 21) on real Spark and the real model: what a run reuses, featurizes again and
drops, and a store that stays consistent under two runs at once and a run killed mid-write."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from featurizer import store
from featurizer.job import execute, prepare
from featurizer.options import STORE_FOLDER, JobOptions
from featurizer.progress import Progress
from featurizer.samples import generate
from featurizer.store import COMMITS, Table
from tests.images import bad_files, write

FEATURE_COLUMNS = ["image_id", "path", "label", "split", "features"]


def options(input_dir: Path, output: Path, run_id: str, weights: Path, **more: Any) -> JobOptions:
    return JobOptions(input=str(input_dir), output=str(output), run_id=run_id, weights=str(weights), **more)


def run(spark: SparkSession, job: JobOptions, **prepared: Any) -> dict:
    """The manifest's counts of one run (`prepared` replaces fields of what `prepare` settled)."""
    settled = dataclasses.replace(prepare(job), **prepared)
    execute(spark, settled, Progress(io.StringIO()))
    return json.loads(Path(job.run_uri, "manifest.json").read_text())["counts"]


def features(run_dir: Path) -> list[dict]:
    table = pq.read_table(run_dir / "features", columns=FEATURE_COLUMNS).sort_by("image_id")
    return table.to_pylist()


def table_of(output: Path, job: JobOptions) -> Table:
    return Table.for_model(str(output / STORE_FOLDER), prepare(job).model.sha256)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two classes of generated images and two broken files (remembered as rejected)."""
    root = tmp_path / "input"
    generate(root, per_class=4, seed=3, defects=False)
    write(root / "Banana", {name: data for name, (data, _) in list(bad_files().items())[:2]})
    return root


def test_a_second_run_featurizes_only_new_and_changed_images_and_equals_a_full_run(
    spark: SparkSession, dataset: Path, weights: Path, tmp_path: Path
) -> None:
    """Then the same input under another model reuses nothing, and a refit reads no image."""
    output = tmp_path / "runs"
    first = run(spark, options(dataset, output, "first", weights))
    found = first["images_found"]
    assert first["images_reused"] == 0
    assert first["images_featurized_new"] == first["images_through_model"] == first["images_featurized"]

    banana = sorted(path for path in (dataset / "Banana").iterdir() if path.name.startswith("0"))
    added = dataset / "Banana" / f"added{banana[0].suffix}"
    shutil.copy(banana[0], added)  # the same bytes under a new path: a new image
    changed, removed = banana[1], banana[2]
    changed.write_bytes(banana[3].read_bytes())  # a new size and modification time
    removed.unlink()

    second = run(spark, options(dataset, output, "second", weights))
    assert second["images_found"] == found  # one added, one removed
    assert second["images_featurized_new"] == second["images_through_model"] == 2  # added, changed
    assert second["images_reused"] == second["images_featurized"] - 2
    assert second["images_removed"] == 1
    assert second["images_rejected"] == first["images_rejected"]  # remembered, not decoded again
    paths = {"/".join(row["path"].rsplit("/", 2)[-2:]) for row in features(output / "second")}
    assert f"Banana/{added.name}" in paths and f"Banana/{removed.name}" not in paths

    full = run(spark, options(dataset, tmp_path / "full", "full", weights, no_store=True))
    assert full["images_through_model"] == full["images_featurized"]
    assert features(output / "second") == features(tmp_path / "full" / "full")
    assert not (tmp_path / "full" / STORE_FOLDER).exists()

    model = prepare(options(dataset, output, "other", weights)).model
    other_model = dataclasses.replace(model, sha256="0" * 64)
    counts = run(spark, options(dataset, output, "other-model", weights), model=other_model)
    assert counts["images_reused"] == 0
    assert counts["images_through_model"] == full["images_featurized"]
    assert len(list((output / STORE_FOLDER).iterdir())) == 2

    for image in dataset.rglob("*"):  # were any image read, the refit would reject it
        if image.is_file():
            image.write_bytes(b"")
    refit = JobOptions(input="", output=str(output), run_id="refit", from_run=str(output / "second"), pca_k=5)
    counts = run(spark, refit)
    described = json.loads((output / "refit" / "manifest.json").read_text())
    assert described["input"] == str(dataset) and described["options"]["from_run"] == str(output / "second")
    assert counts["images_through_model"] == counts["images_featurized_new"] == 0
    assert counts["images_reused"] == second["images_featurized"]
    for name in ("images_found", "images_featurized", "images_rejected"):
        assert counts[name] == second[name]
    assert json.loads((output / "refit" / "metrics.json").read_text())["pca"]["k"] == 5
    assert (output / "refit" / "rejected.csv").read_text() == (output / "second" / "rejected.csv").read_text()
    assert features(output / "refit") == features(output / "second")
    assert "refit of" in (output / "refit" / "report.html").read_text()


def test_two_runs_at_once_and_a_run_killed_mid_write_leave_the_store_consistent(
    spark: SparkSession, dataset: Path, weights: Path, tmp_path: Path
) -> None:
    output = tmp_path / "runs"
    results: dict[str, dict] = {}

    def start(run_id: str) -> None:
        results[run_id] = run(spark, options(dataset, output, run_id, weights))

    threads = [threading.Thread(target=start, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"a", "b"}
    table = table_of(output, options(dataset, output, "c", weights))
    assert len(table.live_commits()) >= 1  # both runs may have featurized every image, and committed

    # A run killed while writing its part and its commit: a part no commit names, a commit half written.
    killed = Path(table.uri) / store.PARTS / "killed"
    shutil.copytree(Path(table.uri) / table.live_commits()[0].part, killed)
    (Path(table.uri) / COMMITS / ".killed.json.tmp").write_text('{"part": "parts/kil')

    counts = run(spark, options(dataset, output, "c", weights))
    assert counts["images_through_model"] == 0
    assert counts["images_reused"] == counts["images_featurized"]
    assert counts["images_featurized"] == results["a"]["images_featurized"]
    assert features(output / "c") == features(output / "a")


def test_a_refit_of_a_run_that_did_not_complete_is_refused_before_spark(tmp_path: Path) -> None:
    from featurizer.job import InputError

    (tmp_path / "runs" / "failed").mkdir(parents=True)
    refit = JobOptions(
        input="", output=str(tmp_path / "runs"), run_id="r", from_run=str(tmp_path / "runs" / "failed")
    )
    with pytest.raises(InputError, match="is not a completed run"):
        prepare(refit)
    itself = dataclasses.replace(refit, run_id="failed")
    with pytest.raises(InputError, match="give the refit another --run-id"):
        prepare(itself)
    spelled_otherwise = dataclasses.replace(itself, from_run=f"file://{tmp_path}/runs/./failed/")
    with pytest.raises(InputError, match="give the refit another --run-id"):
        prepare(spelled_otherwise)
