"""The comparison's report: one table (the papers' Table I, with search cost), the targets,
stability over seeds and two Pareto plots.

Every number is read back from the jobs' own outputs (``metrics.json`` of each training
run, ``search.json`` of each search), so the report can be rebuilt from a finished folder.
With several seeds a cell is ``mean ± sample standard deviation``.
"""

from __future__ import annotations

import itertools
import json
import statistics
from typing import TYPE_CHECKING, Any

from iopath.common.file_io import g_pathmgr

from recsearch.compare.config import CompareConfig
from recsearch.utils.fileio import read_json, write_json

if TYPE_CHECKING:
    from recsearch.data.shards import ShardInfo

# the metrics of a model at one seed: (key, column title, format)
COLUMNS = (
    ("auc", "AUC", "{:.4f}"),
    ("logloss", "logloss", "{:.4f}"),
    ("ne", "NE", "{:.4f}"),
    ("relative_ne", "rel. NE", "{:.4f}"),
    ("mflops", "MFLOPs/ex", "{:.3f}"),
    ("dense_params", "dense params", "{:,.0f}"),
    ("embedding_params", "emb. params", "{:,.0f}"),
    ("embedding_mib", "emb. MiB", "{:.2f}"),
    ("latency_predicted_ms", "ms pred.", "{:.2f}"),
    ("latency_measured_ms", "ms meas.", "{:.2f}"),
    ("search_seconds", "search s", "{:.0f}"),
    ("train_seconds", "train s", "{:.0f}"),
)


def write_report(
    out: str,
    config: CompareConfig,
    entries: list[Any],
    truth: dict[str, Any] | None,
    eval_day: int,
    failed: dict[str, str],
    progress: bool = True,
    info: ShardInfo | None = None,
    randoms: list[Any] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """Collect every finished job of ``entries``, write ``report.md``, ``compare.json`` and the
    Pareto PNGs into ``out``, print the table; returns the ``compare.json`` record. With
    ``info`` (the data's ``ShardInfo``): also predict and measure each model's latency."""
    from recsearch.compare.latency import latency_lines, model_latencies
    from recsearch.compare.run import run_dir, search_dir
    from recsearch.data.planted import bayes_limit

    per_seed: dict[str, dict[int, dict[str, Any]]] = {}
    archs: dict[str, list[dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    threads: set[int] = set()  # intra-op threads of the jobs: part of what reproduces a number
    for e in entries:
        kinds[e.model] = "search" if e.searched else "baseline"
        metrics = f"{run_dir(out, e.model, e.seed)}/metrics.json"
        if not g_pathmgr.exists(metrics):
            continue
        m = read_json(metrics)
        records = [m]
        row = {k: m[k] for k in ("auc", "logloss", "ne", "flops", "dense_params", "embedding_params")}
        row.update(
            mflops=m["flops"] / 1e6,
            embedding_mib=m["embedding_bytes"] / 2**20,
            train_seconds=m.get("train_seconds", float("nan")),
        )
        if e.searched:
            d = search_dir(out, e.model, e.seed)
            records.append(read_json(f"{d}/search.json"))
            row["search_seconds"] = records[-1]["wall_seconds"]
            archs.setdefault(e.model, []).append(read_json(f"{d}/arch.json"))
        threads.update(r["threads"] for r in records if "threads" in r)
        per_seed.setdefault(e.model, {})[e.seed] = row
    if info is not None:
        runs = {f"{n}/{seed}": run_dir(out, n, seed) for n, rows in per_seed.items() for seed in rows}
        latency = model_latencies(out, runs, info, config.latency_model, progress)
        for n, rows in per_seed.items():
            for seed, row in rows.items():
                ms = latency[f"{n}/{seed}"]
                row.update(latency_predicted_ms=ms["predicted_ms"], latency_measured_ms=ms["measured_ms"])
    controls = _controls(out, per_seed, randoms)
    ref = per_seed.get(config.reference, {})
    for rows in per_seed.values():
        for seed, row in rows.items():
            if seed in ref:
                row["relative_ne"] = row["ne"] / ref[seed]["ne"]
    summary = {name: _mean_spread(rows) for name, rows in per_seed.items()}
    bayes = bayes_limit(truth, eval_day) if truth else None
    targets = _targets(config, summary, per_seed, bayes)
    stability = {name: similarity(a) for name, a in archs.items() if len(a) > 1}
    plots = [f"{out}/pareto_flops.png", f"{out}/pareto_embedding.png"]
    record = {
        "config": config.to_dict(),
        "eval_day": eval_day,
        "kinds": kinds,
        "per_seed": per_seed,
        "summary": summary,
        "bayes": bayes,
        "targets": targets,
        "stability": stability,
        "random_controls": controls["methods"],
        "failed": failed,
        "threads": sorted(threads),
        "plots": plots,
    }
    table = results_table(summary, kinds, bayes)
    text = [
        "# Comparison",
        "",
        f"Held-out day {eval_day}; seeds {config.seed_list}; search preset `{config.search_preset}`, "
        f"training recipe `{config.train_preset}` for every model. Cells are mean ± sample std over seeds.",
        *_threads_line(threads),
        "",
        *table,
        "",
        "## Targets",
        "",
        *targets["lines"],
    ]
    if info is not None:
        text += ["", "## Latency", "",
                 "Interaction graph at batch 512 on this machine, embedding lookups excluded: predicted by "
                 "the per-op latency model (`latency.json`), and measured (best of 10).", "",
                 *latency_lines(per_seed, kinds)]  # fmt: skip
    if controls["lines"]:
        text += ["", "## Against random architectures of each method's space", "", *controls["lines"]]
    if stability:
        text += ["", "## Stability of the found architectures over seeds", "",
                 "| method | distinct archs | mean Jaccard of arch items |", "|---|---:|---:|"]  # fmt: skip
        text += [
            f"| {n} | {s['distinct']} of {s['seeds']} | {s['jaccard']:.3f} |" for n, s in stability.items()
        ]
    if failed:
        text += ["", "## Failed jobs", "", *[f"- {name}: {why}" for name, why in failed.items()]]
    g_pathmgr.mkdirs(out)
    with g_pathmgr.open(f"{out}/report.md", "w") as f:
        f.write("\n".join(text) + "\n")
    write_json(f"{out}/compare.json", record)
    plot_pareto(summary, kinds, bayes, out)
    if progress:
        print("\n".join(table))
        print("\n".join(targets["lines"]))
        print(f"report: {out}/report.md; Pareto plots: {', '.join(plots)}")
    return record


def _threads_line(threads: set[int]) -> list[str]:
    """Jobs rerun with the same seeds and thread count give the same numbers; another thread
    count sums floats in another order, which can tip a search to another architecture."""
    if not threads:
        return []
    counts = ", ".join(str(t) for t in sorted(threads))
    return [f"Jobs ran with {counts} intra-op thread(s) each (`--threads-per-job`): rerun with the same "
            "count to reproduce these numbers."]  # fmt: skip


def _mean_spread(rows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    keys = sorted({k for r in rows.values() for k in r})
    out: dict[str, Any] = {"seeds": len(rows)}
    for k in keys:
        values = [float(r[k]) for r in rows.values() if k in r]
        out[k] = statistics.fmean(values)
        out[f"{k}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def results_table(
    summary: dict[str, dict[str, Any]], kinds: dict[str, str], bayes: dict[str, float] | None
) -> list[str]:
    """Markdown rows: found models first, then baselines, then the Bayes limit (planted data)."""
    head = "| model | kind | seeds | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [head, "|---|---|---:|" + "---:|" * len(COLUMNS)]
    order = sorted(summary, key=lambda n: (kinds[n] != "search", n))
    for name in order:
        s = summary[name]
        cells = [_cell(s, key, fmt) for key, _, fmt in COLUMNS]
        lines.append(f"| {name} | {kinds[name]} | {s['seeds']} | " + " | ".join(cells) + " |")
    if bayes:
        cells = [f"{bayes[k]:.4f}" if k in ("auc", "logloss", "ne") else "" for k, _, _ in COLUMNS]
        lines.append("| *Bayes limit* | | | " + " | ".join(cells) + " |")
    return lines


def _cell(s: dict[str, Any], key: str, fmt: str) -> str:
    if key not in s or s[key] != s[key]:  # missing, or NaN (a run from before train_seconds)
        return ""
    text = fmt.format(s[key])
    return f"{text} ± {fmt.format(s[key + '_std'])}" if s["seeds"] > 1 else text


def _controls(out: str, per_seed: dict[str, dict[int, dict[str, Any]]], randoms: list[Any]) -> dict[str, Any]:
    """Each find against the random architectures of its own space at about its cost, trained
    with the same recipe and seed: margin = mean random logloss - mean found logloss (> 0: the
    search beats chance)."""
    from recsearch.compare.run import RANDOM_TAG, run_dir

    drawn: dict[str, list[tuple[int, float, float]]] = {}  # method -> (seed, logloss, FLOPs ratio)
    for e in randoms:
        metrics = f"{run_dir(out, e.model, e.seed)}/metrics.json"
        method = e.model.split(RANDOM_TAG)[0]
        if g_pathmgr.exists(metrics) and e.seed in per_seed.get(method, {}):
            m = read_json(metrics)
            ratio = m["flops"] / per_seed[method][e.seed]["flops"]
            drawn.setdefault(method, []).append((e.seed, float(m["logloss"]), ratio))
    lines: list[str] = []
    methods: dict[str, Any] = {}
    for method, rows in sorted(drawn.items()):
        seeds = sorted({seed for seed, _, _ in rows})
        found = [float(per_seed[method][seed]["logloss"]) for seed in seeds]
        rand = [ll for _, ll, _ in rows]
        best = {seed: min(ll for s_, ll, _ in rows if s_ == seed) for seed in seeds}
        beats = sum(per_seed[method][seed]["logloss"] <= b for seed, b in best.items())
        margin = statistics.fmean(rand) - statistics.fmean(found)
        spread = statistics.stdev(rand) if len(rand) > 1 else 0.0
        methods[method] = {"random_logloss": rand, "found_logloss": found, "margin": margin,
                           "beats_best_random_seeds": beats, "seeds": len(seeds)}  # fmt: skip
        ratio = statistics.fmean(r for _, _, r in rows)
        drawn_text = f"{len(rand)} random {statistics.fmean(rand):.4f} ± {spread:.4f} (best {min(rand):.4f}"
        lines.append(
            f"- {method}: found {statistics.fmean(found):.4f}; {drawn_text}; {ratio:.2f}x the find's FLOPs "
            f"on average); margin {margin:+.4f} logloss; at or below the best random draw in {beats} of "
            f"{len(seeds)} seeds"
        )
    return {"lines": lines, "methods": methods}


def _targets(
    config: CompareConfig,
    summary: dict[str, dict[str, Any]],
    per_seed: dict[str, dict[int, dict[str, Any]]],
    bayes: dict[str, float] | None,
) -> dict[str, Any]:
    """Each found model against the target: logloss at or below the best baseline's, with at
    most ``flops_budget`` of ``target_baseline``'s FLOPs; and the share of the reference's
    logloss gap to the Bayes limit it closes (planted data)."""
    baselines = {n: s for n, s in summary.items() if n in config.baselines}
    found = {n: s for n, s in summary.items() if n not in config.baselines}
    if not baselines or config.target_baseline not in baselines or not found:
        return {"lines": ["Not scored: the target needs the found models and the target baseline's run."]}
    best = min(baselines, key=lambda n: baselines[n]["logloss"])
    budget = config.flops_budget * baselines[config.target_baseline]["flops"]
    lines = [
        f"Target: logloss at or below the best baseline's ({best}, {baselines[best]['logloss']:.4f}) "
        f"with at most {config.flops_budget:.0%} of {config.target_baseline}'s FLOPs "
        f"({budget / 1e6:.3f} MFLOPs/example), per seed.",
        "",
    ]
    by_method: dict[str, Any] = {}
    ref = baselines.get(config.reference)
    for name, s in found.items():
        seeds = per_seed[name]
        best_at = {seed: min(per_seed[b][seed]["logloss"] for b in baselines if seed in per_seed[b])
                   for seed in seeds if any(seed in per_seed[b] for b in baselines)}  # fmt: skip
        met = [seed for seed, r in seeds.items()
               if seed in best_at and r["logloss"] <= best_at[seed] and r["flops"] <= budget]  # fmt: skip
        gap = None
        if bayes and ref:
            gap = (ref["logloss"] - s["logloss"]) / (ref["logloss"] - bayes["logloss"])
        by_method[name] = {"met_seeds": met, "seeds": len(seeds), "gap_closed": gap}
        verdict = "MET" if len(met) == len(seeds) else ("partly met" if met else "NOT met")
        closes = (
            f"; closes {gap:+.1%} of {config.reference}'s logloss gap to the Bayes limit"
            if gap is not None
            else ""
        )
        lines.append(
            f"- {name}: {verdict} ({len(met)} of {len(seeds)} seeds): logloss {s['logloss']:.4f} "
            f"({s['logloss'] - baselines[best]['logloss']:+.4f} vs {best}) at {s['flops'] / budget:.1%} "
            f"of the FLOPs budget{closes}."
        )
    return {"best_baseline": best, "flops_budget": budget, "methods": by_method, "lines": lines}


def arch_items(arch: dict[str, Any]) -> set[str]:
    """An architecture as a set of ``path=value`` leaves (its name and meta left out): what two
    found architectures share, whatever the method (ops, crosses, per-feature dims)."""
    items: set[str] = set()

    def walk(x: Any, path: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}")
        elif isinstance(x, list) and any(isinstance(v, dict | list) for v in x):
            for i, v in enumerate(x):
                walk(v, f"{path}[{i}]")
        else:
            items.add(f"{path}={json.dumps(x, sort_keys=True)}")

    for key, value in arch.items():
        if key not in ("name", "meta", "schema_version"):
            walk(value, key)
    return items


def similarity(archs: list[dict[str, Any]]) -> dict[str, Any]:
    """How alike the architectures found with different seeds are: the mean pairwise Jaccard
    index of their :func:`arch_items` (1: identical) and how many distinct ones there are."""
    sets = [arch_items(a) for a in archs]
    pairs = [len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2)]
    distinct = len({frozenset(s) for s in sets})
    return {"seeds": len(sets), "distinct": distinct, "jaccard": statistics.fmean(pairs)}


def plot_pareto(
    summary: dict[str, dict[str, Any]], kinds: dict[str, str], bayes: dict[str, float] | None, out: str
) -> None:
    """Logloss against FLOPs per example and against embedding bytes (means, ±std bars)."""
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    for x, label, name in (
        ("mflops", "forward MFLOPs per example", "pareto_flops.png"),
        ("embedding_mib", "embedding tables (MiB)", "pareto_embedding.png"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for model, s in summary.items():
            color = "tab:red" if kinds[model] == "search" else "tab:blue"
            ax.errorbar(s[x], s["logloss"], xerr=s[f"{x}_std"], yerr=s["logloss_std"], fmt="o", color=color)
            ax.annotate(model, (s[x], s["logloss"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if bayes:
            ax.axhline(bayes["logloss"], color="gray", linestyle="--", linewidth=1)
            ax.text(0.01, bayes["logloss"], "Bayes limit", transform=ax.get_yaxis_transform(),
                    va="bottom", fontsize=8, color="gray")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out logloss (lower is better)")
        ax.set_title("found (red) and hand-crafted (blue) models", fontsize=10)
        save_figure(fig, f"{out}/{name}")
