"""Experiments behind the docs: fresh run directories, CLI stages, tables naming their run."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsearch.experiments import Experiment, ExperimentError, zoo_results
from recsearch.search.distdnas import quality
from recsearch.search.distdnas.experiments import results


def test_an_experiment_never_reuses_a_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.strftime", lambda *a: "20260101T000000Z")
    first = Experiment(tmp_path, "x")
    assert first.dir == tmp_path / "x-20260101T000000Z" and first.dir.is_dir()
    with pytest.raises(ExperimentError, match="never reuses an earlier run"):
        Experiment(tmp_path, "x")
    with pytest.raises(ExperimentError, match="recsearch train .* failed"):
        first.recsearch("train", "--model", "dlrm", "--data", str(tmp_path), "--train-days", "0")
    assert "(exit 2)" in first.log.read_text()


@pytest.mark.integration
def test_zoo_and_distdnas_results_run_through_the_cli(tmp_path: Path) -> None:
    md = zoo_results(str(tmp_path), rows_per_day=3000, days=3, models=["lr", "dlrm"])
    run = next(tmp_path.glob("zoo-*"))
    assert f"Run `{run}`" in md and "| lr |" in md and "| dlrm |" in md and "*Bayes limit*" in md
    md = results(
        str(tmp_path),
        days=4,
        rows_per_day=3000,
        searches=["distributed K=2"],
        space=["--preset", "tiny"],
        train=["--preset", "tiny"],
    )
    run = next(tmp_path.glob("distdnas_results-*"))
    for row in ("| dlrm |", "| dcn_v2 |", "| distdnas (distributed K=2) |", "| distributed K=2 | 1 |"):
        assert row in md, row
    assert f"Run `{run}`" in md and (run / "commands.log").read_text().count("recsearch train") == 3


@pytest.mark.integration
def test_distdnas_random_baseline_runs_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(quality.PRESETS, "search", "tiny")
    monkeypatch.setitem(quality.PRESETS, "train", "tiny")
    md = quality.random_baseline(str(tmp_path), days=4, rows_per_day=3000, seeds=2, randoms=2)
    run = next(tmp_path.glob("distdnas_random-*"))
    for row in (
        "| dlrm |",
        "| dcn_v2 |",
        "| deepfm |",
        "| found, seed 0 |",
        "| found, seed 1 |",
        "| random 0 |",
        "| random 1 |",
    ):
        assert row in md, row
    assert "margin (random mean − found mean)" in md and "- seed 1: " in md
    # the random archs' interaction FLOPs are within 0.7-1.3x of the found ones' mean
    log = (run / "commands.log").read_text()
    assert log.count("recsearch search distdnas") == 2 and log.count("recsearch train") == 7
