"""Shared fixtures: tiny planted raw days and their shards, made once per session."""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from pathlib import Path

import pytest

from recsearch.data.preprocess import PreprocessOptions, preprocess
from recsearch.data.synth_days import synth

warnings.filterwarnings("ignore", message=".*is_fx_tracing.*")
REPO = Path(__file__).resolve().parents[1]
MOVIELENS = Path(os.environ.get("RECSEARCH_MOVIELENS", REPO / "data" / "movielens100k"))


@pytest.fixture(scope="session")
def raw_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny planted days in raw Criteo format (seed 11)."""
    out = tmp_path_factory.mktemp("raw")
    synth(str(out), days=3, rows_per_day=6000, preset="tiny", seed=11)
    return out


@pytest.fixture(scope="session")
def shards(raw_days: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    preprocess(str(raw_days), str(out), PreprocessOptions(days=(0, 1, 2), vocab_days=(0, 1), workers=1))
    return out


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes("".join(line + newline for line in lines).encode())
    return path


def run_group(cmd: list[str], timeout: int, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command in its own process group; on timeout kill the whole group (torchrun's
    workers included) so no orphan outlives the test."""
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
