"""PROFIT measured: planted-cross recovery, the paper's ablations, and the found model vs the zoo.

Each function runs a fresh :class:`recsearch.experiments.Experiment` through the CLI and
returns markdown for docs/results.md (``tools/profit_results.py`` prints it). On planted
data (``synth``) the teacher's pairs and triples are known (``raw/truth/teacher.json``),
so the selected crosses are scored against them: precision of the top-k pairs and
triples (k = the number planted) and the recall of the kept N_o, with chance beside it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from recsearch.data.criteo import format_days
from recsearch.experiments import Experiment, metrics_table

BASELINES = ("deepfm", "dcn_v2", "dlrm")
# MovieLens-100K has 20k rows per day: a smaller batch gives the search 4x the architecture steps
MOVIELENS_SEARCH = ["batch_size=512", "search_epochs=[2]", "top_n=[8,8,4]"]


def planted(raw: str | Path) -> dict[int, set[tuple[str, ...]]]:
    """The crosses ``synth`` planted in ``raw`` (its output folder), by feature name:
    {2: pairs, 3: triples}."""
    t = json.loads((Path(raw) / "truth" / "teacher.json").read_text())
    pick = ((2, "pairs"), (3, "triples"))
    return {o: {tuple(sorted(f"cat_{i}" for i in c)) for c in t[key]} for o, key in pick}


def score(search_dir: str, raw: str) -> str:
    """Recovery of the planted crosses by a finished search (markdown rows)."""
    f = json.loads((Path(search_dir) / "search.json").read_text())["findings"]
    rows = recovery(f["orders"], planted(raw), len(f["fields"]))
    return "\n".join(
        f"| {search_dir} | {o} | {v['precision_at_k']:.2f} | {v['chance_precision']:.4f} | "
        f"{v['recall_kept']:.2f} of {v['kept']} | {', '.join(v['found']) or '-'} |"
        for o, v in rows.items()
    )


def recovery(
    orders: list[dict[str, Any]], truth: dict[int, set[tuple[str, ...]]], fields: int
) -> dict[str, Any]:
    """Precision@k (k = planted count) and recall of the kept crosses, per order, with chance."""
    out: dict[str, Any] = {}
    for o in orders:
        want = truth.get(o["order"])
        if not want:
            continue
        kept = [tuple(sorted(c["fields"])) for c in o["crosses"]]
        k = len(want)
        hits_k = sum(c in want for c in kept[:k])
        out[str(o["order"])] = {
            "planted": k,
            "precision_at_k": hits_k / k,
            "recall_kept": sum(c in want for c in kept) / k,
            "kept": len(kept),
            "chance_precision": k / math.comb(fields, o["order"]),
            "found": sorted("×".join(c) for c in want if c in kept),
        }
    return out


def _pairs_inside(triple: tuple[str, ...], pairs: set[tuple[str, ...]]) -> int:
    return sum(
        tuple(sorted(p)) in pairs
        for p in ((triple[0], triple[1]), (triple[0], triple[2]), (triple[1], triple[2]))
    )


def movielens(
    base: str, folder: str, seed: int = 0, preset: str = "small", extra: list[str] | None = None
) -> str:
    """PROFIT (progressive) vs DeepFM, DCN-v2 and DLRM on real MovieLens-100K (``folder`` from
    tools/fetch_movielens.sh): five chronological days, search on 0-2 (validation day 3),
    every model trained on 0-2 and evaluated on day 4."""
    exp = Experiment(base, "profit_movielens")
    ml = exp.movielens_shards(folder)
    train = ["--preset", "small", f"seed={seed}"]
    models = {m: exp.train(["--model", m], ml, "0-2", 4, m, *train) for m in BASELINES}
    overrides = [*MOVIELENS_SEARCH, *(extra or [])]
    r = exp.search("profit", ml, "0-2", 3, "search", "--preset", preset, f"seed={seed}", *overrides)
    models["profit (progressive)"] = exp.train(
        ["--arch", f"{r['dir']}/arch.json"], ml, "0-2", 4, "found", *train
    )
    kept = "; ".join(
        f"order {o['order']}: " + ", ".join("×".join(c["fields"]) for c in o["crosses"][:6])
        for o in r["findings"]["orders"]
    )
    return "\n".join(
        [
            f"Run `{exp.dir}`: MovieLens-100K (real; rating > 3 is a click), five chronological days; "
            f"search preset {preset} {' '.join(overrides)} on days 0-2 (validation day 3); every model "
            "trained on days 0-2 (train preset small) and evaluated on day 4.",
            "",
            *metrics_table(models),
            "",
            f"Kept crosses (first 6 per order): {kept}.",
        ]
    )


def results(
    base: str,
    days: int = 5,
    rows_per_day: int = 300_000,
    seed: int = 0,
    preset: str = "small",
    synth_preset: str = "small",
    modes: tuple[str, ...] = ("progressive", "one-step", "random"),
    extra: list[str] | None = None,
) -> str:
    """Search (each mode) on days 0..N-3 with validation day N-2; every found model and the
    baselines trained on those days and evaluated on day N-1."""
    exp = Experiment(base, "profit_results")
    train_days, val_day, eval_day = list(range(days - 2)), days - 2, days - 1
    tdays = format_days(train_days)
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed, synth_preset)
    truth = planted(exp.dir / "raw")
    train = ["--preset", "small", f"seed={seed}"]
    models = {m: exp.train(["--model", m], shards, tdays, eval_day, m, *train) for m in BASELINES}
    lines_rec, found = [], {}
    for mode in modes:
        r = exp.search("profit", shards, tdays, val_day, f"search_{mode}", "--preset", preset,
                       f"mode={mode}", f"seed={seed}", *(extra or []))  # fmt: skip
        f = r["findings"]
        rec = recovery(f["orders"], truth, len(f["fields"]))
        found[mode] = (r, rec)
        models[f"profit ({mode})"] = exp.train(["--arch", f"{r['dir']}/arch.json"], shards, tdays, eval_day,
                                                f"found_{mode}", *train)  # fmt: skip
        for o, v in rec.items():
            lines_rec.append(
                f"| {mode} | {o} | {v['planted']} | {v['precision_at_k']:.2f} | "
                f"{v['chance_precision']:.4f} | {v['recall_kept']:.2f} of {v['kept']} kept | "
                f"{', '.join(v['found']) or '-'} |"
            )
    pairs = truth[2]
    lonely = [t for t in truth[3] if _pairs_inside(t, pairs) == 0]
    phases = "; ".join(
        f"{mode}: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["phases"].items() if k != "outputs")
        for mode, (r, _) in found.items()
    )
    return "\n".join(
        [
            f"Run `{exp.dir}`: synth --preset {synth_preset} --seed {seed}, {days} days x "
            f"{rows_per_day:,} rows; search preset {preset} {' '.join(extra or [])} on days {tdays} "
            f"(validation day {val_day}); every model trained on days {tdays} (train preset small) and "
            f"evaluated on day {eval_day}.",
            "",
            f"Planted: {len(pairs)} pairs, {len(truth[3])} triples; {len(lonely)} triple(s) contain no "
            f"planted pair ({', '.join('×'.join(t) for t in lonely) or 'none'}).",
            "",
            "| mode | order | planted | precision@k | chance | recall of the kept | planted crosses found |",
            "|---|---:|---:|---:|---:|---|---|",
            *lines_rec,
            "",
            *metrics_table(models, exp.bayes(eval_day)),
            "",
            f"Wall time per phase: {phases}.",
        ]
    )
