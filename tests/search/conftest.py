"""A search of each registered method on the tiny shards, run once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_recsearch

TRAIN_DAYS, VAL_DAY = "0-1", "2"


@pytest.fixture(scope="session")
def searched(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``searched(method)``: the search directory of ``recsearch search METHOD --preset tiny``
    on the tiny shards (train days 0-1, validation day 2), run through the CLI once."""
    done: dict[str, Path] = {}

    def search(method: str) -> Path:
        if method not in done:
            out = tmp_path_factory.mktemp(f"search_{method}") / "s"
            run_recsearch(
                "search", method, "--data", str(shards), "--train-days", TRAIN_DAYS,
                "--val-day", VAL_DAY, "--out", str(out), "--preset", "tiny", timeout=900,
            )  # fmt: skip
            done[method] = out
        return done[method]

    return search
