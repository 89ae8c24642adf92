"""``recsearch quickstart``: the README's main job on an embedded default.

For now: planted data -> shards -> a few batches and a summary. Later stages
(search, train, export) extend this pipeline.
"""

from __future__ import annotations

from recsearch.data.criteo import format_days
from recsearch.data.preprocess import PreprocessOptions, default_vocab_days, preprocess
from recsearch.data.summary import summarize
from recsearch.data.synth_days import synth


def quickstart(workdir: str, preset: str, days: int, rows_per_day: int, seed: int) -> None:
    raw, shards = f"{workdir}/raw", f"{workdir}/shards"
    print(f"[1/3] synth: {days} days x {rows_per_day:,} rows ({preset} preset, seed {seed}) -> {raw}")
    truth = synth(raw, days, rows_per_day, preset, seed)
    all_days = list(range(days))
    vocab_days = default_vocab_days(all_days)
    print(f"[2/3] preprocess -> {shards} (vocabulary from days {format_days(vocab_days)})")
    preprocess(
        raw,
        shards,
        PreprocessOptions(days=tuple(all_days), vocab_days=tuple(vocab_days), max_rows_per_table=500_000),
    )
    print("[3/3] load batches")
    print(summarize(shards, all_days))
    last = truth["days"][-1]
    print(
        f"held-out day {last['day']}: Bayes-optimal logloss {last['bayes_logloss']:.5f}, "
        f"AUC {last['bayes_auc']:.5f} (the limit no model can beat)"
    )
