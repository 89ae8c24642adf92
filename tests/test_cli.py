"""The recsearch command: help, stage wiring, the quickstart main job."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recsearch.cli import build_parser, main
from recsearch.search.registry import get_method, list_methods
from recsearch.train.config import TrainConfig


def test_help_lists_every_registered_stage() -> None:
    parser = build_parser()
    stages = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = {c.dest: c.help for c in stages._choices_actions}
    assert {"synth", "preprocess", "train", "search", "quickstart"} <= set(registered)
    for name in list_methods():  # stages a method adds appear too
        for stage in get_method(name).stages:
            assert stage.rsplit(":add_", 1)[-1] in registered
    out = subprocess.run(
        [sys.executable, "-m", "recsearch", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for stage, help_text in registered.items():
        assert re.search(rf"^  {stage} +{re.escape(help_text)}$", out, re.M), stage
        sub = subprocess.run(
            [sys.executable, "-m", "recsearch", stage, "--help"], capture_output=True, text=True
        )
        assert sub.returncode == 0 and "usage: recsearch " + stage in sub.stdout
    pre = subprocess.run(
        [sys.executable, "-m", "recsearch", "preprocess", "--help"], capture_output=True, text=True
    )
    for flag in ("--input", "--out", "--days", "--vocab-days", "--max-rows-per-table", "--on-bad-line"):
        assert flag in pre.stdout


def test_train_help_lists_every_config_key_with_its_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "recsearch", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for f in dataclasses.fields(TrainConfig):
        assert re.search(rf"^  {f.name}=", out, re.M), f.name
    assert "  batch_size=4096  (int; >= 1)" in out and "--preset {paper,small,tiny}" in out


def test_no_stage_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "preprocess" in capsys.readouterr().out


def test_synth_prints_bayes_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--rows-per-day", "3000", "--preset", "tiny", "--gzip"]
    assert main(["synth", "--output", str(tmp_path), "--days", "2", *args]) == 0  # older spellings
    out = capsys.readouterr().out
    assert "bayes logloss" in out and len(out.strip().splitlines()) == 3
    assert (tmp_path / "day_1.gz").exists() and not (tmp_path / "day_1").exists()
    # a day range adds days; each day depends only on (preset, seed, day)
    assert main(["synth", "--out", str(tmp_path), "--days", "3-4", *args]) == 0
    bayes = json.loads((tmp_path / "truth" / "bayes.json").read_text())
    assert [d["day"] for d in bayes["days"]] == [0, 1, 3, 4]
    other = tmp_path / "other"
    assert main(["synth", "--out", str(other), "--days", "1-1", *args]) == 0
    assert (other / "day_1.gz").read_bytes() == (tmp_path / "day_1.gz").read_bytes()
    capsys.readouterr()
    assert main(["synth", "--out", str(tmp_path), "--days", "5", "--seed", "9", *args]) == 2
    assert "holds days of another synth" in capsys.readouterr().err


def test_profile_and_eval_stages(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.json"
    assert (
        main(["profile", "--model", "dlrm", "--data", str(shards), "--batch-sizes", "1,8", "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "FLOPs/example" in text and "batch     8" in text
    profile = json.loads(out.read_text())
    assert profile["flops"] > 0 and set(profile["latency_ms"]) == {"1", "8"}
    run = tmp_path / "run"
    train = [
        "--data",
        str(shards),
        "--train-days",
        "0",
        "--eval-day",
        "2",
        "--out",
        str(run),
        "--preset",
        "tiny",
    ]
    assert main(["train", "--model", "fm", *train]) == 0
    trained = json.loads((run / "metrics.json").read_text())
    assert main(["eval", "--run", str(run), "--data", str(shards), "--day", "2"]) == 0
    assert "day 2: auc" in capsys.readouterr().out
    again = json.loads((run / "eval_day_2.json").read_text())
    assert again["auc"] == pytest.approx(trained["auc"], abs=1e-6) and again["rows"] == 6000
    assert main(["eval", "--run", str(run), "--data", str(shards), "--day", "9"]) == 2
    assert "day(s) [9] not in the manifest" in capsys.readouterr().err


@pytest.mark.integration
def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "recsearch",
            "quickstart",
            "--out",
            str(tmp_path),
            "--rows-per-day",
            "5000",
            "--days",
            "0-3",
            "--search-preset",
            "tiny",
            "--train-preset",
            "tiny",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    for stage in ("[1/7] synth", "[3/7] search distdnas", "[6/7] export", "[7/7] summary"):
        assert stage in r.stdout
    table = r.stdout[r.stdout.index("[7/7] summary") :]
    for row in ("dlrm", "dcn_v2", "distdnas", "Bayes limit"):
        assert f"\n{row}" in table
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["results"]) == {"dlrm", "dcn_v2", "distdnas"}
    search = summary["search"]
    assert search["train_days"] == [0, 1] and search["val_day"] == 2 and search["preset"] == "tiny"
    assert list(search["findings"]["jobs"]) == ["day_0", "day_1"]  # one job per search day
    for r_ in summary["results"].values():
        assert r_["auc"] > 0.6 and r_["eval_day"] == 3
    for f in ("pareto.png", "search/aggregate.png", "search/report.md", "distdnas.pt", "search/arch.json"):
        assert (tmp_path / f).stat().st_size > 0, f


def _empty_day_shards(shards: Path, tmp_path: Path) -> Path:
    """The tiny shards with day 2 replaced by a day of zero rows."""
    import shutil

    from recsearch.data.shards import DayShardWriter

    root = tmp_path / "empty_day"
    shutil.copytree(shards, root)
    record = DayShardWriter(str(root), 2, 13, 26).finish({"source": "none", "skipped_lines": 0})
    m = json.loads((root / "manifest.json").read_text())
    m["days"]["2"] = {k: record[k] for k in ("rows", "skipped_lines", "source", "files")}
    (root / "manifest.json").write_text(json.dumps(m))
    return root


def test_user_errors_end_in_one_line(
    shards: Path, raw_days: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("batch_size: [1, 2\nemb_lr: 0.1\n")
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"schema_version": 1, "blocks": [')
    search = tmp_path / "search"
    search.mkdir()
    (search / "aggregate.json").write_text('{"dense_weights": [[0.1, ')
    arch = json.loads(json.dumps(__import__("recsearch.models.zoo", fromlist=["x"]).create_arch("dcn_v2")))
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({**arch, "blocks": [{**arch["blocks"][1], "dense_out": -3}]}))
    head = tmp_path / "head.json"
    head.write_text(json.dumps({**arch, "head": {**arch["head"], "hidden": [64, -1]}}))
    fractional = tmp_path / "fractional.json"
    fractional.write_text(json.dumps({**arch, "embedding": {"dim": 16, "dims": {"cat_0": 7.5}}}))
    empty = _empty_day_shards(shards, tmp_path)
    data = ["--data", str(shards), "--train-days", "0", "--eval-day", "1"]
    train = ["train", "--model", "fm", *data]
    r = str(tmp_path / "r")

    def arch_run(path: Path) -> list[str]:
        return ["train", "--arch", str(path), *data, "--out", r]

    cases = [
        (["synth", "--out", str(a_file), "--days", "0-1"], "is an existing file"),
        (["preprocess", "--input", str(raw_days), "--out", str(a_file / "sub")], "cannot create the dir"),
        (["train", "--model", "fm", *data, "--out", str(a_file)], "is an existing file"),
        ([*train, "--out", r, "--config", str(bad_yaml)], "bad.yaml is not valid YAML"),
        ([*train, "--out", r, "max_steps=-1"], "max_steps must be >= 0"),
        ([*train, "--out", r, "epochs=0"], "epochs must be >= 1"),
        ([*train, "--out", r, "warmup_steps=-5"], "warmup_steps must be >= 0"),
        (arch_run(truncated), "is not valid JSON"),
        (arch_run(negative), "dense_out must be a positive"),
        (arch_run(head), r"head.hidden\[\] must be a positive"),
        (arch_run(fractional), "dims.cat_0 must be a positive"),
        (
            ["discretize", "--search", str(search), "--out", str(tmp_path / "a.json")],
            "aggregate.json is damaged",
        ),
        (
            ["profile", "--model", "fm", "--data", str(shards), "--out", str(a_file / "p.json")],
            "existing file",
        ),
        (["export", "--run", str(tmp_path), "--out", str(tmp_path)], "is a directory; name a file"),
        (
            [
                "train",
                "--model",
                "fm",
                "--data",
                str(empty),
                "--train-days",
                "0",
                "--eval-day",
                "2",
                "--out",
                str(tmp_path / "e"),
                "--preset",
                "tiny",
            ],
            "eval day 2 has no rows",
        ),  # fmt: skip
        (["inspect", "--data", str(a_file)], "has no manifest.json"),
        (["profile", "--data", str(shards)], "give --model or --arch"),
        (["profile", "--data", str(shards), "--fit-latency", str(tmp_path)], "is a directory; name a file"),
        *[
            (
                [
                    "search",
                    m,
                    "--preset",
                    "tiny",
                    "--data",
                    str(shards),
                    "--train-days",
                    "0",
                    "--val-day",
                    "1",
                    "--out",
                    str(tmp_path / m),
                    "cost_metric=latency",
                    f"latency_model={tmp_path / 'no.json'}",
                ],
                "latency_model=.*no.json: no such file",
            )  # fmt: skip
            for m in ("distdnas", "nasrec")
        ],
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(message, err[0]), (args, err)
        assert "Traceback" not in err[0]


def test_eval_on_an_empty_day_and_a_train_day_as_eval_day(
    shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    train = ["train", "--model", "fm", "--data", str(shards), "--train-days", "0-1", "--eval-day", "1"]
    assert main([*train, "--out", str(run), "--preset", "tiny", "max_steps=5"]) == 0
    assert "warning: eval day 1 is also a train day" in capsys.readouterr().err
    empty = _empty_day_shards(shards, tmp_path)
    assert main(["eval", "--run", str(run), "--data", str(empty), "--day", "2"]) == 2
    assert "day 2 has no rows to evaluate on" in capsys.readouterr().err
