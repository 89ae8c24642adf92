"""A training run killed with SIGKILL resumes from its last checkpoint to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.integration
def test_killed_training_resumes_from_checkpoint(shards: Path, tmp_path: Path) -> None:
    def cmd(out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "recsearch",
            "train",
            "--model",
            "dlrm",
            "--data",
            str(shards),
            "--train-days",
            "0-1",
            "--eval-day",
            "2",
            "--out",
            str(out),
            "batch_size=32",
            "checkpoint_every=40",
            "warmup_steps=10",
        ]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    subprocess.run(cmd(ref), check=True, capture_output=True, env=env, timeout=600)
    out = tmp_path / "out"
    # killed as kill -9 would, right after its 2nd checkpoint (step 80)
    killed = subprocess.run(
        cmd(out), capture_output=True, env={**env, "RECSEARCH_KILL_AT": "checkpoint-saved:2"}
    )
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    step = json.loads((out / "checkpoint" / "meta.json").read_text())["step"]
    assert step == 80
    rerun = subprocess.run(cmd(out), check=True, capture_output=True, text=True, env=env, timeout=600)
    assert f"resuming from the checkpoint at step {step}" in rerun.stdout
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    for key in ("auc", "logloss", "ne"):
        assert b[key] == pytest.approx(a[key], abs=1e-5), key
