"""`featurizer scale`: the fit, the cost at EMR Serverless prices, the table and plot, and its refusals."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from featurizer.cli import main as cli
from featurizer.scale import (
    X86_PRICES,
    MeasuredRun,
    NotEnoughSizes,
    TimeFit,
    Workers,
    cost_usd,
    estimates,
    fit_time,
)

VCPU_HOUR_USD, GB_HOUR_USD = X86_PRICES.vcpu_hour, X86_PRICES.gb_hour


def write_run(folder: Path, images: int, seconds: float) -> str:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"counts": {"images_found": images}}))
    (folder / "timings.json").write_text(json.dumps({"stages": {}, "total_seconds": seconds}))
    return str(folder)


def test_the_fit_separates_start_up_from_the_time_per_image() -> None:
    runs = [MeasuredRun("a", 1000, 40.0), MeasuredRun("b", 5000, 80.0), MeasuredRun("c", 3000, 60.0)]

    fit = fit_time(runs)

    assert fit.startup_seconds == pytest.approx(30.0)
    assert fit.seconds_per_image == pytest.approx(0.01)


def test_least_squares_over_noisy_runs() -> None:
    runs = [MeasuredRun("a", 0, 10.0), MeasuredRun("b", 0, 12.0), MeasuredRun("c", 100, 21.0)]

    fit = fit_time(runs)

    assert fit.startup_seconds == pytest.approx(11.0) and fit.seconds_per_image == pytest.approx(0.1)


@pytest.mark.parametrize("sizes", [[500], [500, 500, 500]])
def test_runs_of_a_single_size_are_refused(sizes: list[int]) -> None:
    with pytest.raises(NotEnoughSizes, match="at least two runs of different sizes"):
        fit_time([MeasuredRun(str(i), n, 10.0 + i) for i, n in enumerate(sizes)])


def test_a_larger_run_that_was_faster_is_refused() -> None:
    with pytest.raises(NotEnoughSizes, match="not slower"):
        fit_time([MeasuredRun("a", 100, 50.0), MeasuredRun("b", 1000, 40.0)])


def test_cost_counts_the_driver_and_every_executor_at_the_published_prices() -> None:
    workers = Workers()  # 4 vCPU / 16 GB driver + 10 executors of 4 vCPU / 8 GB

    assert workers.vcpu == 44 and workers.memory_gb == 96
    assert cost_usd(3600, workers, VCPU_HOUR_USD, GB_HOUR_USD) == pytest.approx(
        44 * 0.052624 + 96 * 0.0057785
    )
    assert cost_usd(1800, Workers(executors=0), 0.1, 0.01) == pytest.approx(0.5 * (4 * 0.1 + 16 * 0.01))


def test_estimates_cover_100k_1m_and_10m_images() -> None:
    rows = estimates(TimeFit(60.0, 0.01), Workers(), VCPU_HOUR_USD, GB_HOUR_USD)

    assert [r.images for r in rows] == [100_000, 1_000_000, 10_000_000]
    assert [r.seconds for r in rows] == pytest.approx([1060.0, 10_060.0, 100_060.0])
    assert rows[2].cost_usd == pytest.approx(cost_usd(100_060.0, Workers(), VCPU_HOUR_USD, GB_HOUR_USD))


def test_the_command_prints_the_table_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = write_run(tmp_path / "small", 1_000, 40.0)
    large = write_run(tmp_path / "large", 5_000, 80.0)
    plot = tmp_path / "scale.svg"

    assert cli(["scale", small, large, "--plot", str(plot), "--executors", "2"]) == 0

    out = capsys.readouterr().out
    assert "fit: time = 30.0 s + 10.000 ms x images" in out
    assert "2 executor(s) of 4 vCPU / 8 GB" in out
    expected = cost_usd(30.0 + 0.01 * 1_000_000, Workers(executors=2), VCPU_HOUR_USD, GB_HOUR_USD)
    assert f"1,000,000  {'2 h 47 min':>14}  {10_030:>12,}  {expected:>12,.2f}" in out
    svg = ET.fromstring(plot.read_text())
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(svg.findall("{http://www.w3.org/2000/svg}circle")) == 2 + 3  # measured + extrapolated


def test_one_run_is_not_extrapolated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    only = write_run(tmp_path / "only", 1_000, 40.0)

    assert cli(["scale", only]) == 2

    captured = capsys.readouterr()
    assert "at least two runs of different sizes are needed" in captured.err and captured.out == ""


def test_a_folder_that_is_not_a_finished_run_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["scale", str(tmp_path / "missing"), str(tmp_path / "other")]) == 2
    assert "cannot read a finished run's manifest.json and timings.json" in capsys.readouterr().err


def test_a_negative_start_up_time_is_not_extrapolated_from() -> None:
    fit = fit_time([MeasuredRun("a", 1000, 10.0), MeasuredRun("b", 2000, 30.0)])  # the line says -10 s

    assert fit.through_origin and fit.startup_seconds == 0.0
    assert fit.seconds_per_image == pytest.approx((1000 * 10 + 2000 * 30) / (1000**2 + 2000**2))
