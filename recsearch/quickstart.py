"""``recsearch quickstart``: the README's main job, a search end to end on an embedded default.

synth (planted raw Criteo days) -> preprocess -> ``recsearch search METHOD`` under the
shared contract (its ``small`` preset; train days: all but the last two, validation day:
the second-to-last) -> train the found model (``arch.json``), DLRM and DCN-v2 on the
same train days -> evaluate on the held-out last day -> export the found model -> a
Table-I-like summary with the Bayes limit and a Pareto plot. Everything lands under
``--out``; rerunning resumes (finished days, searches and runs are kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recsearch.data.criteo import format_days
from recsearch.data.planted import bayes_limit, planted_shards
from recsearch.utils.fileio import check_out_dir, write_json

BASELINES = ("dlrm", "dcn_v2")


@dataclass
class QuickstartOptions:
    out: str = "runs/quickstart"
    method: str = "distdnas"
    search_preset: str = "small"
    train_preset: str = "small"
    preset: str = "tiny"  # synth preset
    days: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    rows_per_day: int = 100_000
    seed: int = 0
    workers: int = 2
    scheduler: str = "local_cwd"
    overrides: list[str] = field(default_factory=list)  # search config key=value


def quickstart(o: QuickstartOptions) -> dict[str, Any]:
    from recsearch.dist.jobs import LaunchOptions
    from recsearch.export.serving import export_run
    from recsearch.models.arch import load_arch
    from recsearch.models.zoo import create_arch
    from recsearch.search.contract import run_search
    from recsearch.search.registry import get_method
    from recsearch.train.config import TrainConfig
    from recsearch.train.trainer import train
    from recsearch.utils.config import load_config

    if len(o.days) < 3:
        raise ValueError(f"quickstart needs at least 3 days (train, validation, held out), got {o.days}")
    method = get_method(o.method)
    search_cfg: Any = load_config(
        method.config, None, [*o.overrides, f"seed={o.seed}"], o.search_preset, method.preset_kind
    )
    w = o.out
    check_out_dir(w)
    shards = f"{w}/shards"
    train_days, val_day, eval_day = o.days[:-2], o.days[-2], o.days[-1]
    steps = 7

    print(
        f"[1/{steps}] synth: days {format_days(o.days)} x {o.rows_per_day:,} rows ({o.preset}, seed {o.seed})"
    )
    print(f"[2/{steps}] preprocess -> {shards}")
    truth = planted_shards(w, o.days, o.rows_per_day, o.preset, o.seed)

    print(
        f"[3/{steps}] search {o.method} ({o.search_preset} preset): train days {format_days(train_days)}, "
        f"validation day {val_day}, {o.workers} job(s) at a time"
    )
    launch = LaunchOptions(scheduler=o.scheduler, workers=o.workers)
    found = run_search(
        o.method, shards, train_days, val_day, f"{w}/search", search_cfg, o.search_preset, launch
    )
    print(f"      {found['result']['name']}: {w}/search/arch.json, report {w}/search/report.md")

    models = [(name, create_arch(name)) for name in BASELINES]
    models.append((o.method, load_arch(f"{w}/search/arch.json")))
    results: dict[str, dict[str, Any]] = {}
    for k, (name, arch) in enumerate(models):
        print(
            f"[{4 + (k > 0)}/{steps}] train {name} on days {format_days(train_days)}, eval on day {eval_day}"
        )
        overrides = [f"seed={o.seed}"]
        if name != BASELINES[0]:
            overrides.append(f"baseline_run={w}/runs/{BASELINES[0]}")
        cfg = load_config(TrainConfig, None, overrides, o.train_preset, "train")
        results[name] = train(arch, shards, train_days, eval_day, f"{w}/runs/{name}", cfg)

    print(f"[6/{steps}] export the found model (TorchScript over plain tensors)")
    export_path = f"{w}/{o.method}.pt"
    export_run(f"{w}/runs/{o.method}", export_path)
    print(f"      -> {export_path}")

    print(f"[7/{steps}] summary (held-out day {eval_day})")
    bayes = bayes_limit(truth, eval_day)
    table = format_table(results, bayes)
    print(table)
    summary = {
        "method": o.method,
        "results": results,
        "bayes": bayes,
        "search": found,
        "arch": f"{w}/search/arch.json",
        "export": export_path,
    }
    write_json(f"{w}/summary.json", summary)
    plot_pareto(results, bayes, f"{w}/pareto.png", highlight=o.method)
    print(f"results: {w}/summary.json; Pareto plot: {w}/pareto.png")
    return summary


def format_table(results: dict[str, dict[str, Any]], bayes: dict[str, float]) -> str:
    """The paper's Table I layout: FLOPs, params, NE, relative NE (vs DLRM), AUC, logloss."""
    base = results[BASELINES[0]]["ne"]
    lines = [
        f"{'model':<12}{'MFLOPs/ex':>11}{'params':>12}{'dense params':>14}{'NE':>9}"
        f"{'rel. NE':>9}{'AUC':>9}{'logloss':>9}",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:<12}{r['flops'] / 1e6:>11.3f}{r['params']:>12,}{r['dense_params']:>14,}{r['ne']:>9.4f}"
            f"{r['ne'] / base:>9.4f}{r['auc']:>9.4f}{r['logloss']:>9.4f}"
        )
    lines.append(
        f"{'Bayes limit':<12}{'':>11}{'':>12}{'':>14}{bayes['ne']:>9.4f}{bayes['ne'] / base:>9.4f}"
        f"{bayes['auc']:>9.4f}{bayes['logloss']:>9.4f}"
    )
    return "\n".join(lines)


def plot_pareto(
    results: dict[str, dict[str, Any]], bayes: dict[str, float], path: str, highlight: str = ""
) -> None:
    """AUC and NE against FLOPs per example, with the Bayes limit."""
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in (
        (axes[0], "auc", "AUC (higher is better)"),
        (axes[1], "ne", "NE (lower is better)"),
    ):
        for name, r in results.items():
            ax.scatter(r["flops"], r[key], s=40, color="tab:red" if name == highlight else "tab:blue")
            ax.annotate(name, (r["flops"], r[key]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.axhline(bayes[key], color="gray", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[0], bayes[key], " Bayes limit", va="bottom", fontsize=8, color="gray")
        ax.set_xscale("log")
        ax.set_xlabel("forward FLOPs per example")
        ax.set_ylabel(label)
    fig.suptitle("held-out day: quality vs cost", fontsize=10)
    save_figure(fig, path)
