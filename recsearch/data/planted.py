"""Planted data for the end-to-end jobs (``quickstart``, ``compare``): ``synth`` raw days
preprocessed into shards, and each day's Bayes limit (the teacher's own predictions)."""

from __future__ import annotations

from typing import Any

from recsearch.data.preprocess import PreprocessOptions, default_vocab_days, preprocess
from recsearch.data.synth_days import synth
from recsearch.train.metrics import binary_entropy


def planted_shards(out: str, days: list[int], rows_per_day: int, preset: str, seed: int) -> dict[str, Any]:
    """Raw days in ``out/raw`` and their shards in ``out/shards``; returns synth's truth
    summary. Both steps keep what an earlier call finished (a rerun resumes)."""
    truth = synth(f"{out}/raw", days, rows_per_day, preset, seed, keep_written=True)
    preprocess(
        f"{out}/raw",
        f"{out}/shards",
        PreprocessOptions(
            days=tuple(days), vocab_days=tuple(default_vocab_days(days)), max_rows_per_table=500_000
        ),
    )
    return truth


def bayes_limit(truth: dict[str, Any], day: int) -> dict[str, float]:
    """The teacher's logloss, AUC and NE on ``day``: what no model can beat."""
    held = next(d for d in truth["days"] if d["day"] == day)
    ne = held["bayes_logloss"] / binary_entropy(held["ctr"])
    return {"logloss": held["bayes_logloss"], "auc": held["bayes_auc"], "ne": ne, "ctr": held["ctr"]}
