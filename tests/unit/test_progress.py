"""Progress while a run goes: the log's count lines, and progress.json, which the API shows."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from featurizer.progress import Progress, ProgressFile


def test_each_count_shown_is_handed_on_as_it_changes() -> None:
    counts = iter([0, 5, 5, 9])
    seen: list[int] = []
    finished = threading.Event()

    def done() -> int:
        value = next(counts, 9)
        if value == 9:
            finished.set()
        return value

    log = io.StringIO()
    with Progress(log, log_interval=0.01).stage("featurize", 9, done, seen.append):
        assert finished.wait(5)
    assert seen[:3] == [0, 5, 9]
    assert "[featurize] 9 / 9 images" in log.getvalue().splitlines()[-1]


def test_progress_file_is_rewritten_at_most_every_interval_but_at_each_stage_start(tmp_path: Path) -> None:
    published = ProgressFile(str(tmp_path / "progress.json"), every_seconds=3600)

    published.publish("featurize", 0, 100, start=True)
    published.publish("featurize", 40, 100)  # within the interval: not written
    assert json.loads((tmp_path / "progress.json").read_text())["images_done"] == 0
    published.publish("persist", start=True)
    written = json.loads((tmp_path / "progress.json").read_text())
    assert (written["stage"], written["images_done"], written["images_total"]) == ("persist", None, None)


def test_a_progress_file_that_cannot_be_written_fails_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    ProgressFile(str(tmp_path / "file" / "progress.json")).publish("fit", start=True)  # a file as its folder
    assert "could not write" in caplog.text
