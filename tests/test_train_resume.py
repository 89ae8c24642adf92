"""Training survives kills at any point, Ctrl-C and the scheduler's SIGTERM, and refuses to mix runs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import run_recsearch

# (kill point, the signal's exit status, the step the rerun resumes from)
POINTS = [
    ("checkpoint-moved-aside:1", -signal.SIGKILL, 20),  # first swap: only the new checkpoint exists
    ("checkpoint-moved-aside:2", -signal.SIGKILL, 40),  # between the renames of a swap
    ("checkpoint-state-written:3", -signal.SIGKILL, 40),  # a new checkpoint without its meta.json
    ("train-step:50", -signal.SIGKILL, 40),  # between checkpoints: back to the last one
    ("train-step:50:SIGINT", 130, 50),  # Ctrl-C: the step finishes, a checkpoint is saved
    ("train-step:90:SIGTERM", 130, 90),  # a scheduler's SIGTERM (preemption): the same
]


def _train(shards: Path, out: Path, *extra: str, **kwargs):
    where = ["--data", str(shards), "--train-days", "0-1", "--eval-day", "2", "--out", str(out)]
    args = ["train", "--model", "fm", *where, "batch_size=64", "checkpoint_every=20", "warmup_steps=10"]
    return run_recsearch(*args, *extra, timeout=600, **kwargs)


@pytest.mark.integration
def test_killed_training_resumes_to_the_same_result_at_every_point(shards: Path, tmp_path: Path) -> None:
    env = {"OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    _train(shards, ref, env=env)
    expected = json.loads((ref / "metrics.json").read_text())
    for point, status, resume_step in POINTS:
        out = tmp_path / point.replace(":", "_")
        killed = _train(shards, out, env={**env, "RECSEARCH_KILL_AT": point}, check=False)
        assert killed.returncode == status, (point, killed.stderr[-2000:])
        assert not (out / "metrics.json").exists()
        if status == 130:  # one line, no traceback; says how to go on
            assert f"checkpoint at step {resume_step} of 188 saved" in killed.stdout + killed.stderr
            assert "rerun the same command to resume" in killed.stderr and "Traceback" not in killed.stderr
        rerun = _train(shards, out, env=env)
        assert f"resuming from the checkpoint at step {resume_step} of 188" in rerun.stdout, point
        got = json.loads((out / "metrics.json").read_text())
        for key in ("auc", "logloss", "ne"):
            assert got[key] == pytest.approx(expected[key], abs=1e-5), (point, key)
        assert not list(out.glob(".checkpoint-*")), f"{point}: swap leftovers"


@pytest.mark.integration
def test_a_rerun_with_other_settings_is_refused_and_restart_starts_over(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _train(shards, out, "max_steps=30")
    r = _train(shards, out, "max_steps=30", "seed=4", "dense_lr=0.01", check=False)
    assert r.returncode == 2
    assert "differs in: config.dense_lr, config.seed" in r.stderr and "--restart" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert json.loads((out / "config.json").read_text())["seed"] == 0  # the first run is intact
    _train(shards, out, "max_steps=30", "seed=4", "dense_lr=0.01", "--restart")
    assert json.loads((out / "config.json").read_text())["seed"] == 4


def test_sigterm_sets_a_flag_that_stops_after_the_step() -> None:
    from recsearch.dist.env import init_distributed
    from recsearch.train.loop import StopRequests

    stop = StopRequests(init_distributed())
    try:
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGTERM)  # handled: the test process goes on
        assert stop.requested() and stop.signal_name == "SIGTERM"
    finally:
        stop.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
