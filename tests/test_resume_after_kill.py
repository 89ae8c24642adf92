"""A preprocess killed with SIGKILL resumes and produces byte-identical output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recsearch.data.synth_days import synth
from tests.test_preprocess import tree_bytes


@pytest.mark.integration
def test_killed_preprocess_resumes_byte_identical(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    synth(str(raw), days=4, rows_per_day=30_000, preset="tiny", seed=5)
    cmd = [
        sys.executable,
        "-m",
        "recsearch",
        "preprocess",
        "--input",
        str(raw),
        "--days",
        "0-3",
        "--vocab-days",
        "0-2",
        "--workers",
        "1",
    ]
    ref = tmp_path / "ref"
    subprocess.run([*cmd, "--output", str(ref)], check=True, capture_output=True)  # the old spelling

    out = tmp_path / "out"
    # killed as kill -9 would, right after day 1's completion record (workers=1: in-process)
    env = {**os.environ, "RECSEARCH_KILL_AT": "day-record-written:2"}
    killed = subprocess.run([*cmd, "--out", str(out)], capture_output=True, env=env)
    assert killed.returncode == -signal.SIGKILL
    assert (out / "day_1.done.json").exists()
    assert not (out / "manifest.json").exists(), "a killed run must not look complete"
    assert not (out / "day_3.done.json").exists()

    rerun = subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True, text=True)
    assert "already complete and verified, skipped" in rerun.stdout
    assert not list(out.rglob(".tmp-*")), "the killed run's temporaries are cleaned up"
    assert tree_bytes(out) == tree_bytes(ref)
