"""DNIS measured: dims per field against the planted truth, and the pruned models against
uniform embedding sizes (UES) of the same base model, on planted and real data.

Each function runs a fresh :class:`recsearch.experiments.Experiment` through the CLI and
returns markdown for docs/results.md (``tools/dnis_results.py`` prints it). The search's
own retrains (one per compression rate, trained on the train days with the train preset
``small``'s recipe) are scored on the evaluation day with ``recsearch eval``; the UES
models and the zoo baselines are trained on the same days with the same recipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsearch.data.criteo import format_days
from recsearch.experiments import (
    Experiment,
    planted_fields,
    scored_on,
    size_table,
    size_target,
    uniform_sizes,
)

BASELINES = ("dlrm", "dcn_v2")
# MovieLens-100K: 20k rows per day; the paper's L = 10 blocks for MovieLens, a smaller batch
# for more alpha steps
MOVIELENS_SEARCH = ["blocks=10", "batch_size=512", "epochs=2"]


def _pruned(exp: Experiment, r: dict[str, Any], shards: str, eval_day: int) -> dict[str, Any]:
    """The search's retrain at each compression rate, scored on ``eval_day``."""
    return {
        f"DNIS CR {p['cr']:g}": scored_on(exp, f"{r['dir']}/retrain_cr{p['cr']:g}", shards, eval_day)
        for p in r["findings"]["pruned"]
    }


def results(
    base: str,
    days: int = 5,
    rows_per_day: int = 300_000,
    seed: int = 0,
    preset: str = "small",
    synth_preset: str = "small",
    extra: list[str] | None = None,
) -> str:
    """DNIS on planted data: search on days 0..N-3 (validation N-2), every model trained on
    those days and scored on day N-1, beside UES 8/16/32/64 and DLRM / DCN-v2."""
    exp = Experiment(base, "dnis_results")
    train_days, val_day, eval_day = list(range(days - 2)), days - 2, days - 1
    tdays = format_days(train_days)
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed, synth_preset)
    r = exp.search(
        "dnis", shards, tdays, val_day, "search", "--preset", preset, f"seed={seed}", *(extra or [])
    )
    f = r["findings"]
    models = {
        **uniform_sizes(exp, f["base_model"], f["base_hidden"], shards, tdays, eval_day, seed),
        # the same uniform tables projected to K, as DNIS's are: is the gain the allocation?
        **uniform_sizes(
            exp, f["base_model"], f["base_hidden"], shards, tdays, eval_day, seed, (8, 16), f["emb_dim"]
        ),
        **_pruned(exp, r, shards, eval_day),
    }
    zoo = {
        m: exp.train(["--model", m], shards, tdays, eval_day, m, "--preset", "small", f"seed={seed}")
        for m in BASELINES
    }
    return "\n".join(
        [
            f"Run `{exp.dir}`: synth --preset {synth_preset} --seed {seed}, {days} days x "
            f"{rows_per_day:,} rows; `recsearch search dnis --preset {preset} {' '.join(extra or [])}` on "
            f"days {tdays} (validation day {val_day}); every model trained on days {tdays} (train preset "
            f"small) and evaluated on day {eval_day}. "
            f"Base model {f['base_model']} (K = {f['emb_dim']}); UES-d is it with every table at d.",
            "",
            *size_table({**models, **zoo}),
            "",
            size_target(models, "DNIS"),
            "",
            f"Search wall time per phase: {_phases(r)}.",
            "",
            *planted_fields(exp.dir / "raw", f["mean_dim"], "mean dim"),
            "",
            *value_block_dims(exp.dir / "raw", f"{r['dir']}/pruned/cr{f['pruned'][0]['cr']:g}.json"),
        ]
    )


def value_block_dims(raw: str | Path, arch: str | Path) -> list[str]:
    """The dims of each field's value blocks between the reserved block and the rare tail
    (blocks 1..L-2: ids of comparable frequency in every field), informative vs noise fields
    by table size (markdown). A field's mean dim over its rows is its tail's, and a small
    table's rows are cheap whatever they carry; these blocks are where the budget is chosen."""
    truth = json.loads((Path(raw) / "truth" / "teacher.json").read_text())
    blocks = json.loads(Path(arch).read_text())["embedding"]["blocks"]
    bands = ((5000, None), (1000, 5000), (0, 1000))
    lines = [
        "| cardinality | informative: fields, mean dim of blocks 1..L-2 | noise: fields, mean dim |",
        "|---|---:|---:|",
    ]
    for lo, hi in bands:
        got: dict[bool, list[float]] = {True: [], False: []}
        for i, (n, scale) in enumerate(zip(truth["cardinality"], truth["cat_scale"], strict=True)):
            dims = blocks[f"cat_{i}"]["dims"]
            if n >= lo and (hi is None or n < hi) and len(dims) > 2:
                got[scale > 0].append(sum(dims[1:-1]) / (len(dims) - 2))
        cells = [f"{len(v)}, {sum(v) / len(v):.1f}" if v else "0, -" for v in (got[True], got[False])]
        band = f">= {lo:,}" if hi is None else f"{lo:,}-{hi - 1:,}"
        lines.append(f"| {band} | {cells[0]} | {cells[1]} |")
    return lines


def movielens(
    base: str, folder: str, seed: int = 0, preset: str = "small", extra: list[str] | None = None
) -> str:
    """DNIS vs UES on real MovieLens-100K (``folder`` from tools/fetch_movielens.sh): five
    chronological days, search on 0-2 (validation day 3), every model scored on day 4."""
    exp = Experiment(base, "dnis_movielens")
    ml = exp.movielens_shards(folder)
    overrides = [*MOVIELENS_SEARCH, *(extra or [])]
    r = exp.search("dnis", ml, "0-2", 3, "search", "--preset", preset, f"seed={seed}", *overrides)
    f = r["findings"]
    model = (f["base_model"], f["base_hidden"])
    models = {
        **uniform_sizes(exp, *model, ml, "0-2", 4, seed),
        **uniform_sizes(exp, *model, ml, "0-2", 4, seed, (8, 16), f["emb_dim"]),
        **_pruned(exp, r, ml, 4),
    }
    zoo = {
        m: exp.train(["--model", m], ml, "0-2", 4, m, "--preset", "small", f"seed={seed}") for m in BASELINES
    }
    dims = ", ".join(f"{k} {v:.1f}" for k, v in f["mean_dim"].items())
    return "\n".join(
        [
            f"Run `{exp.dir}`: MovieLens-100K (real; rating > 3 is a click), five chronological days; "
            f"`recsearch search dnis --preset {preset} {' '.join(overrides)}` on days 0-2 (validation "
            "day 3); "
            "every model trained on days 0-2 (train preset small) and evaluated on day 4.",
            "",
            *size_table({**models, **zoo}),
            "",
            size_target(models, "DNIS"),
            "",
            f"Mean dim per field at CR {f['pruned'][0]['cr']:g}: {dims}. Search wall time per phase: "
            f"{_phases(r)}.",
        ]
    )


def _phases(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.0f} s" for k, v in r["findings"]["phase_seconds"].items())
