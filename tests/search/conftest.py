"""A search of each registered method on the tiny shards, run once per test session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_export_matches_eager, run_recsearch, train_processes

TRAIN_DAYS, VAL_DAY = "0-1", "2"


def tiny_search_args(method: str, shards: Path) -> list[str]:
    """``search METHOD`` on the tiny shards (train days 0-1, validation day 2), tiny preset."""
    where = ["--train-days", TRAIN_DAYS, "--val-day", VAL_DAY, "--preset", "tiny"]
    return ["search", method, "--data", str(shards), *where]


def killed_then_resumed(args: list[str], out: Path, point: str, *extra: str) -> dict[str, Any]:
    """Run ``recsearch ARGS --out OUT`` killed (SIGKILL) at fault ``point``, check it left no
    ``arch.json``, rerun it to the end; returns the resumed search's ``arch.json``."""
    env = {"RECSEARCH_KILL_AT": point}
    killed = run_recsearch(*args, "--out", str(out), *extra, env=env, check=False)
    assert killed.returncode == -9, (point, killed.stderr[-2000:])
    assert not (out / "arch.json").exists(), point
    run_recsearch(*args, "--out", str(out), *extra)
    return json.loads((out / "arch.json").read_text())


def trains_on_two_processes_and_exports(arch: Path, shards: Path, tmp_path: Path) -> None:
    """``arch`` trains with 2 processes (gloo, tables on both ranks) and its export, loaded
    with torch + fbgemm_gpu only, matches the eager model."""
    run = tmp_path / "two"
    m = train_processes(2, ["--arch", str(arch)], shards, run, "batch_size=64")
    assert m["world_size"] == 2 and {r for t in m["sharding_plan"].values() for r in t["ranks"]} == {0, 1}
    run_recsearch("export", "--run", str(run), "--out", str(tmp_path / "m.pt"))
    assert_export_matches_eager(run, tmp_path / "m.pt", tmp_path)


@pytest.fixture(scope="session")
def searched(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``searched(method)``: the search directory of ``recsearch search METHOD --preset tiny``
    on the tiny shards (train days 0-1, validation day 2), run through the CLI once."""
    done: dict[str, Path] = {}

    def search(method: str) -> Path:
        if method not in done:
            out = tmp_path_factory.mktemp(f"search_{method}") / "s"
            run_recsearch(*tiny_search_args(method, shards), "--out", str(out), timeout=900)
            done[method] = out
        return done[method]

    return search
