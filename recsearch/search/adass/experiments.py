"""AdaS&S measured: chosen sizes per field against the planted truth, the retrained models
against uniform embedding sizes (UES) of the same base model, and the stability of the choice
over search seeds, on planted and real data.

Each function runs a fresh :class:`recsearch.experiments.Experiment` through the CLI and
returns markdown for docs/results.md (``tools/adass_results.py`` prints it). The searches'
retrains (the train preset small's recipe) are scored on the evaluation day with
``recsearch eval``; UES models and the zoo baselines train on the same days the same way.
Both published modes search the one supernet (``supernet_from``).
"""

from __future__ import annotations

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
MODES = ("effect-first", "resource-first")
# MovieLens-100K: 20k rows per day; the paper's scheme for MovieLens (independent tables)
MOVIELENS_SEARCH = ["scheme=independent", "epochs=2"]


def _modes(
    exp: Experiment, shards: str, tdays: str, val_day: int, eval_day: int, args: list[str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Search in each mode (the later ones on the first's trained supernet), each retrain scored
    on ``eval_day``; returns the searches and the scored models."""
    searches: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        # one supernet: its training does not depend on the mode, the later searches reuse it
        reuse = [f"supernet_from={searches[MODES[0]]['dir']}"] if searches else []
        r = exp.search("adass", shards, tdays, val_day, f"search_{mode}", *args, f"mode={mode}", *reuse)
        searches[mode] = r
        models[f"AdaS&S {mode}"] = scored_on(exp, f"{r['dir']}/retrain", shards, eval_day)
    return searches, models


def _stability(r: dict[str, Any]) -> str:
    st = r["findings"]["stability"]
    shares = [v["mode_share"] for v in st.values()]
    above = sum(s > 0.75 for s in shares)
    return (
        f"{len(r['findings']['searches'])} searches: the most chosen size's share per field is "
        f"{min(shares):.2f}-{max(shares):.2f} ({above} of {len(shares)} fields above 0.75): "
        + ", ".join(f"{k} {v['mode_size']} ({v['mode_share']:.2f})" for k, v in st.items())
    )


def results(
    base: str,
    days: int = 5,
    rows_per_day: int = 300_000,
    seed: int = 0,
    preset: str = "small",
    synth_preset: str = "small",
    extra: list[str] | None = None,
) -> str:
    """AdaS&S (both modes) on planted data: search on days 0..N-3 (validation N-2), every model
    trained on those days and scored on day N-1, beside UES 8/16/32/64 and DLRM / DCN-v2."""
    exp = Experiment(base, "adass_results")
    train_days, val_day, eval_day = list(range(days - 2)), days - 2, days - 1
    tdays = format_days(train_days)
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed, synth_preset)
    args = ["--preset", preset, f"seed={seed}", *(extra or [])]
    searches, found = _modes(exp, shards, tdays, val_day, eval_day, args)
    c = searches[MODES[0]]["config"]
    models = {**uniform_sizes(exp, c["base_model"], c["base_hidden"], shards, tdays, eval_day, seed), **found}
    zoo = {
        m: exp.train(["--model", m], shards, tdays, eval_day, m, "--preset", "small", f"seed={seed}")
        for m in BASELINES
    }
    first = searches[MODES[0]]
    sizes = first["findings"]["sizes"]
    return "\n".join(
        [
            f"Run `{exp.dir}`: synth --preset {synth_preset} --seed {seed}, {days} days x {rows_per_day:,} "
            f"rows; `recsearch search adass {' '.join(args)} mode=...` on days {tdays} (validation day "
            f"{val_day}); every model trained on days {tdays} (train preset small) and evaluated on day "
            f"{eval_day}. Base model {c['base_model']} {c['base_hidden']} at d_f = {c['common_dim']}; "
            "UES-d is it with every table at d.",
            "",
            *size_table({**models, **zoo}),
            "",
            size_target(models, "AdaS&S"),
            "",
            "Wall time per phase: "
            + "; ".join(
                f"{m}: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["findings"]["phase_seconds"].items())
                for m, r in searches.items()
            ),
            "",
            f"Stability ({MODES[0]}): {_stability(first)}.",
            "",
            *planted_fields(exp.dir / "raw", {k: float(v) for k, v in sizes.items()}, "size"),
        ]
    )


def movielens(
    base: str, folder: str, seed: int = 0, preset: str = "small", extra: list[str] | None = None
) -> str:
    """AdaS&S (both modes) vs UES on real MovieLens-100K (``folder`` from
    tools/fetch_movielens.sh): search on days 0-2 (validation day 3), every model scored on day 4."""
    exp = Experiment(base, "adass_movielens")
    ml = exp.movielens_shards(folder)
    args = ["--preset", preset, f"seed={seed}", *MOVIELENS_SEARCH, *(extra or [])]
    searches, found = _modes(exp, ml, "0-2", 3, 4, args)
    c = searches[MODES[0]]["config"]
    models = {**uniform_sizes(exp, c["base_model"], c["base_hidden"], ml, "0-2", 4, seed), **found}
    zoo = {
        m: exp.train(["--model", m], ml, "0-2", 4, m, "--preset", "small", f"seed={seed}") for m in BASELINES
    }
    return "\n".join(
        [
            f"Run `{exp.dir}`: MovieLens-100K (real; rating > 3 is a click), five chronological days; "
            f"`recsearch search adass {' '.join(args)} mode=...` on days 0-2 (validation day 3); every "
            "model trained on days 0-2 (train preset small) and evaluated on day 4.",
            "",
            *size_table({**models, **zoo}),
            "",
            size_target(models, "AdaS&S"),
            "",
            *(
                f"Sizes ({m}): " + ", ".join(f"{k} {v}" for k, v in r["findings"]["sizes"].items()) + "."
                for m, r in searches.items()
            ),
            "",
            f"Stability ({MODES[0]}): {_stability(searches[MODES[0]])}.",
        ]
    )


def _sizes(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in r["findings"]["sizes"].items())
