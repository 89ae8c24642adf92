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
from recsearch.experiments import Experiment

UES_DIMS = (8, 16, 32, 64)
BASELINES = ("dlrm", "dcn_v2")
# MovieLens-100K: 20k rows per day; the paper's L = 10 blocks for MovieLens, a smaller batch
# for more alpha steps
MOVIELENS_SEARCH = ["blocks=10", "batch_size=512", "epochs=2"]


def _ues(
    exp: Experiment, f: dict[str, Any], shards: str, days: str, eval_day: int, seed: int
) -> dict[str, Any]:
    """The base model (as the search ran it) at each uniform dim, trained on ``days``, scored
    on ``eval_day``."""
    from recsearch.models.arch import save_arch
    from recsearch.search.common import base_model_arch

    out = {}
    for d in UES_DIMS:
        path = str(exp.dir / f"ues{d}.json")
        arch = base_model_arch(f["base_model"], d, f.get("base_hidden", []))
        save_arch(path, {**arch, "name": f"{f['base_model']}_ues{d}"})
        out[f"UES-{d}"] = exp.train(
            ["--arch", path], shards, days, eval_day, f"ues{d}", "--preset", "small", f"seed={seed}"
        )
    return out


def _pruned(exp: Experiment, r: dict[str, Any], shards: str, eval_day: int) -> dict[str, Any]:
    """The search's retrain at each compression rate, scored on ``eval_day``."""
    out = {}
    for p in r["findings"]["pruned"]:
        run = f"{r['dir']}/retrain_cr{p['cr']:g}"
        result = f"{run}/eval_day_{eval_day}.json"
        exp.recsearch("eval", "--run", run, "--data", shards, "--day", str(eval_day), "--out", result)
        m = json.loads(Path(result).read_text())
        metrics = json.loads(Path(f"{run}/metrics.json").read_text())
        out[f"DNIS CR {p['cr']:g}"] = {**metrics, **m}
    return out


def comparison_table(models: dict[str, dict[str, Any]], reference: str = "UES-16") -> list[str]:
    """Embedding parameters and quality of each model, against ``reference``."""
    ref = models[reference]
    lines = [
        f"| model | embedding params | vs {reference} | table MiB | dense params | AUC | ΔAUC | "
        "logloss | NE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in models.items():
        lines.append(
            f"| {name} | {m['embedding_params']:,} | "
            f"{m['embedding_params'] / ref['embedding_params'] - 1:+.1%} | "
            f"{m['embedding_bytes'] / 2**20:.1f} | {m['dense_params']:,} | {m['auc']:.4f} | "
            f"{m['auc'] - ref['auc']:+.4f} | {m['logloss']:.4f} | {m['ne']:.4f} |"
        )
    return lines


def target(models: dict[str, dict[str, Any]], reference: str = "UES-16") -> str:
    """The issue's target: >= 30% fewer embedding parameters than UES-16 at <= 0.001 AUC loss."""
    ref = models[reference]
    what = f">= 30% fewer embedding parameters than {reference}"
    ok = [
        n
        for n, m in models.items()
        if n.startswith("DNIS")
        and m["embedding_params"] <= 0.7 * ref["embedding_params"]
        and m["auc"] >= ref["auc"] - 0.001
    ]
    if ok:
        return f"Target met by {', '.join(ok)}: {what}, AUC within 0.001."
    return f"Target NOT met: no DNIS model has {what} at <= 0.001 AUC loss."


def planted_dims(raw: str | Path, mean_dim: dict[str, float]) -> list[str]:
    """Mean dim per field beside what ``synth`` planted: informative fields (a first-order
    effect, some in crosses) vs pure-noise ones."""
    t = json.loads((Path(raw) / "truth" / "teacher.json").read_text())
    crossed = {f for c in t["pairs"] + t["triples"] for f in c}
    rows: list[str] = []
    inf: list[float] = []
    noise: list[float] = []
    for i, scale in enumerate(t["cat_scale"]):
        f = f"cat_{i}"
        d = mean_dim[f]
        (inf if scale > 0 else noise).append(d)
        kind = "crossed" if i in crossed else ("first-order" if scale > 0 else "noise")
        rows.append(f"| {f} | {t['cardinality'][i]:,} | {kind} | {scale:.2f} | {d:.1f} |")
    mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
    return [
        f"Mean dim (over rows) of the {len(inf)} informative fields {mean(inf):.1f}, of the {len(noise)} "
        f"pure-noise fields {mean(noise):.1f} (smallest informative {min(inf):.1f}, largest noise "
        f"{max(noise):.1f}).",
        "",
        "| field | cardinality | planted | first-order scale | mean dim |",
        "|---|---:|---|---:|---:|",
        *rows,
    ]


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
        **_ues(exp, f, shards, tdays, eval_day, seed),
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
            *comparison_table({**models, **zoo}),
            "",
            target(models),
            "",
            f"Search wall time per phase: {_phases(r)}.",
            "",
            *planted_dims(exp.dir / "raw", f["mean_dim"]),
        ]
    )


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
    models = {**_ues(exp, f, ml, "0-2", 4, seed), **_pruned(exp, r, ml, 4)}
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
            *comparison_table({**models, **zoo}),
            "",
            target(models),
            "",
            f"Mean dim per field at CR {f['pruned'][0]['cr']:g}: {dims}. Search wall time per phase: "
            f"{_phases(r)}.",
        ]
    )


def _phases(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.0f} s" for k, v in r["findings"]["phase_seconds"].items())
