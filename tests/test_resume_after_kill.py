"""A preprocess killed with SIGKILL at any point resumes and produces byte-identical output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recsearch.data.synth_days import synth
from tests.test_preprocess import tree_bytes

# Kill points: named steps of a day, and the N-th atomic file publication (84 in this run:
# parsed intermediates, value counts, vocabulary files, shards, records, the manifest).
POINTS = [
    "day-parsed:1",
    "day-parsed:3",
    "shards-committed:1",  # shards moved to their final names, no completion record yet
    "shards-committed:3",
    "day-record-written:2",
    "before-commit:4",  # a finished temporary file not yet renamed
    *[f"committed:{n}" for n in (1, 5, 9, 13, 20, 40, 60, 70, 75, 78, 81, 83, 84)],
]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    synth(str(out), days=3, rows_per_day=2000, preset="tiny", seed=5)
    return out


def _cmd(raw: Path, out: Path) -> list[str]:
    args = ["preprocess", "--input", str(raw), "--days", "0-2", "--vocab-days", "0-1", "--workers", "1"]
    return [sys.executable, "-m", "recsearch", *args, "--out", str(out)]


@pytest.mark.integration
def test_killed_preprocess_resumes_byte_identical_at_every_point(raw: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    subprocess.run(_cmd(raw, ref), check=True, capture_output=True)
    expected = tree_bytes(ref)
    killed_at = []
    for point in POINTS:
        out = tmp_path / point.replace(":", "_")
        env = {**os.environ, "RECSEARCH_KILL_AT": point}
        first = subprocess.run(_cmd(raw, out), capture_output=True, env=env)
        if first.returncode == -signal.SIGKILL:
            killed_at.append(point)
            assert not (out / "manifest.json").exists() or point.startswith("committed:84"), point
        else:
            assert first.returncode == 0, (point, first.stderr[-2000:])
        rerun = subprocess.run(_cmd(raw, out), capture_output=True, text=True)
        assert rerun.returncode == 0, (point, rerun.stderr[-2000:])
        assert not list(out.rglob(".tmp-*")), f"{point}: temporaries left behind"
        assert tree_bytes(out) == expected, point
    assert len(killed_at) == len(POINTS), set(POINTS) - set(killed_at)
