"""The recsearch command: help, stage wiring, the quickstart main job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsearch.cli import main


def test_help_lists_every_stage() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "recsearch", "--help"], capture_output=True, text=True, check=True
    )
    for stage in ("synth", "preprocess", "convert", "inspect", "quickstart"):
        assert f"  {stage}" in out.stdout
    pre = subprocess.run(
        [sys.executable, "-m", "recsearch", "preprocess", "--help"], capture_output=True, text=True
    )
    for flag in (
        "--input",
        "--output",
        "--days",
        "--vocab-days",
        "--max-rows-per-table",
        "--on-bad-line",
        "--workers",
    ):
        assert flag in pre.stdout


def test_no_stage_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "preprocess" in capsys.readouterr().out


def test_synth_prints_bayes_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "synth",
                "--output",
                str(tmp_path),
                "--days",
                "2",
                "--rows-per-day",
                "3000",
                "--preset",
                "tiny",
                "--gzip",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "bayes logloss" in out and len(out.strip().splitlines()) == 3
    assert (tmp_path / "day_1.gz").exists() and not (tmp_path / "day_1").exists()


@pytest.mark.integration
def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "recsearch",
            "quickstart",
            "--workdir",
            str(tmp_path),
            "--rows-per-day",
            "5000",
            "--days",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    for stage in (
        "[1/8] synth",
        "[3/8] DistDNAS search",
        "[4/8] discretize",
        "[7/8] export",
        "[8/8] summary",
    ):
        assert stage in r.stdout
    table = r.stdout[r.stdout.index("[8/8] summary") :]
    for row in ("dlrm", "dcn_v2", "distdnas", "Bayes limit"):
        assert f"\n{row}" in table
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["results"]) == {"dlrm", "dcn_v2", "distdnas"}
    assert summary["search"]["sources"] == ["day_0", "day_1"]  # one job per search day
    for r_ in summary["results"].values():
        assert r_["auc"] > 0.6 and r_["eval_day"] == 2
    for f in (
        "pareto.png",
        "search/aggregate.png",
        "search/cost_table.png",
        "distdnas.pt",
        "distdnas_arch.json",
    ):
        assert (tmp_path / f).stat().st_size > 0, f
