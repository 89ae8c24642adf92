"""NASRec measured: the discovered model vs DLRM, DCN-v2 and DeepFM on the same days.

Each call runs a fresh :class:`recsearch.experiments.Experiment` through the CLI and
returns markdown for docs/results.md (``tools/nasrec_results.py`` prints it).

Planted data (``synth --preset small``): the search trains on days 0..N-3 with validation
day N-2; every model (the discovered one and the baselines) is then trained on days
0..N-3 with one recipe and evaluated on day N-1, which neither the search nor training saw.
MovieLens-100K (real; five chronological days): the search trains on days 0-2 with
validation day 3, models train on days 0-2 and are evaluated on day 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsearch.data.criteo import format_days
from recsearch.experiments import Experiment, metrics_table

BASELINES = ["dlrm", "dcn_v2", "deepfm"]
TRAIN = ["batch_size=512", "warmup_steps=100"]  # one recipe for every model compared


def _compare(
    exp: Experiment,
    shards: str,
    train_days: list[int],
    val_day: int,
    eval_day: int,
    tag: str,
    search_args: list[str],
    train: list[str],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    days = format_days(train_days)
    found = exp.search("nasrec", shards, days, val_day, f"search_{tag}", *search_args)
    models: dict[str, list[str]] = {m: ["--model", m] for m in BASELINES}
    models["nasrec"] = ["--arch", f"{found['dir']}/arch.json"]
    results = {}
    for name, model in models.items():
        rel = [] if name == "dlrm" else [f"baseline_run={exp.dir}/runs/{tag}_dlrm"]
        results[name] = exp.train(model, shards, days, eval_day, f"{tag}_{name}", *train, *rel)
    return found, results


def _summary(found: dict[str, Any], results: dict[str, dict[str, Any]]) -> list[str]:
    f = found["findings"]
    best = min(BASELINES, key=lambda m: results[m]["logloss"])
    ours = results["nasrec"]
    verdict = "at or below" if ours["logloss"] <= results[best]["logloss"] else "above"
    lines = [
        f"- Search: {found['command_seconds'] / 60:.1f} min wall ({found['dir']}); "
        f"{f['evaluated_subnets']} subnets scored in {f['rounds']} rounds; top-{len(f['top_k'])} retrained.",
        f"- Discovered vs the best baseline ({best}): logloss {ours['logloss']:.5f} vs "
        f"{results[best]['logloss']:.5f} ({verdict}); FLOPs {ours['flops'] / results['dcn_v2']['flops']:.1%} "
        "of DCN-v2's.",
    ]
    r = f.get("ranking")
    if r:
        lines.append(
            f"- Ranking over {r['subnets']} random subnets (supernet vs stand-alone validation logloss): "
            f"Kendall tau {r['kendall_tau']:.3f} (fine-tuned {r['kendall_tau_finetuned']:.3f}), "
            f"Pearson r {r['pearson_r']:.3f} (fine-tuned {r['pearson_r_finetuned']:.3f})."
        )
    return lines


def results(
    base: str,
    days: int = 5,
    rows_per_day: int = 300_000,
    seed: int = 0,
    preset: str = "small",
    movielens: str = "",
    overrides: list[str] | None = None,
    train: list[str] | None = None,
) -> str:
    """The search with ``preset`` (+ ``overrides``) on planted data and, with ``movielens``
    (the folder of tools/fetch_movielens.sh), on real MovieLens-100K; returns the markdown."""
    if days < 3:
        raise ValueError(f"an experiment needs at least 3 days (train, validation, held out), got {days}")
    exp = Experiment(base, "nasrec_results")
    train = train or TRAIN
    search_args = ["--preset", preset, f"seed={seed}", *(overrides or [])]
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed)
    train_days, val_day, eval_day = list(range(days - 2)), days - 2, days - 1
    found, res = _compare(exp, shards, train_days, val_day, eval_day, "synth", search_args, train)
    text = [
        f"## NASRec ({preset} preset): synth --preset small --seed {seed}, "
        f"{days} days x {rows_per_day:,} rows",
        "",
        f"Run `{exp.dir}`. Search on days {format_days(train_days)} (validation day {val_day}); "
        f"every model trained on days {format_days(train_days)} ({' '.join(train)}) and evaluated on "
        f"day {eval_day}. Search: {' '.join(search_args)}.",
        "",
        *metrics_table(res, exp.bayes(eval_day)),
        "",
        *_summary(found, res),
        "",
    ]
    if movielens:
        ml = exp.movielens_shards(movielens)
        found, res = _compare(exp, ml, [0, 1, 2], 3, 4, "ml", search_args, train)
        text += [
            f"## NASRec ({preset} preset): MovieLens-100K (real; rating > 3 is a click)",
            "",
            "Five chronological days; search on days 0-2 (validation day 3); every model trained on "
            f"days 0-2 ({' '.join(train)}) and evaluated on day 4.",
            "",
            *metrics_table(res),
            "",
            *_summary(found, res),
            "",
        ]
    return "\n".join(text)


def norm_ablation(
    base: str, search: str, names: list[str] | None = None, train: list[str] | None = None
) -> str:
    """Subnets of a finished search (default: its two best) trained with and without
    ``space.standalone_norm`` (the supernet's LayerNorm after each block's outputs), on the
    search's train days, evaluated on the day after its validation day; returns the markdown."""
    import json

    from recsearch.search.nasrec.config import NASRecSpace
    from recsearch.search.nasrec.space import decode
    from recsearch.search.nasrec.to_arch import arch_from_genotype

    exp = Experiment(base, "nasrec_norm_ablation")
    record = json.loads(Path(f"{search}/search.json").read_text())
    candidates = json.loads(Path(f"{search}/candidates.json").read_text())
    space = NASRecSpace(**record["config"]["space"])
    shards, days, eval_day = record["data"], format_days(record["train_days"]), record["val_day"] + 1
    train = train or TRAIN
    names = names or [t["name"] for t in record["findings"]["top_k"][:2]]
    lines = [
        f"Run `{exp.dir}` on the subnets of `{search}`: trained on days {days} ({' '.join(train)}), "
        f"evaluated on day {eval_day}.",
        "",
        "| subnet | LayerNorm after each block | MFLOPs/example | AUC | logloss | NE |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in names:
        num_dense = candidates[name]["arch"]["meta"]["num_dense"]
        for norm in (False, True):
            tag = f"{name}_{'norm' if norm else 'plain'}"
            arch = arch_from_genotype(
                decode(candidates[name]["genotype"]), space, num_dense, name=tag, norm=norm
            )
            path = exp.write(f"{tag}.json", json.dumps(arch))
            m = exp.train(["--arch", str(path)], shards, days, eval_day, tag, *train)
            lines.append(
                f"| {name} | {'yes' if norm else 'no'} | {m['flops'] / 1e6:.3f} | {m['auc']:.4f} | "
                f"{m['logloss']:.5f} | {m['ne']:.4f} |"
            )
    return "\n".join(lines)
