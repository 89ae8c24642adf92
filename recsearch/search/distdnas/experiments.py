"""DistDNAS experiments: discovered models vs the zoo, cost vs no cost, per-day vs one-shot speed.

Each function runs a fresh :class:`recsearch.experiments.Experiment` through the CLI and
returns markdown for docs/results.md or docs/benchmarks.md (the ``tools/distdnas_*`` and
``tools/bench_search_speedup.py`` scripts print it). Data: ``synth --preset small``;
days 0..N-3 are searched and trained on, day N-2 is the search's validation day, day
N-1 is held out for the final metrics.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from recsearch.data.criteo import format_days
from recsearch.experiments import Experiment, metrics_table

# the space and settings of the recorded results (docs/results.md): between small and paper
SPACE = [
    "space.num_blocks=5",
    "space.dense_dim=128",
    "space.sparse_fields=16",
    "space.head_hidden=[128]",
    "batch_size=512",
    "warmup_steps=20",
    "arch_lr=0.05",
]
TRAIN = ["batch_size=512", "warmup_steps=20"]
# name: (mode, workers, threads per job; 0 = cores / workers)
SEARCHES = {
    "one-shot, 1 worker": ("one-shot", 1, 1),
    "one-shot, all cores": ("one-shot", 1, 0),
    "distributed K=2": ("distributed", 2, 1),
    "no-cost K=2": ("distributed", 2, 1),
}


def _days(n: int) -> tuple[list[int], int, int]:
    if n < 3:
        raise ValueError(f"an experiment needs at least 3 days (train, validation, held out), got {n}")
    return list(range(n - 2)), n - 2, n - 1


def _search(
    exp: Experiment, shards: str, days: int, name: str, seed: int, space: list[str]
) -> dict[str, Any]:
    mode, workers, threads = SEARCHES[name]
    train_days, val_day, _ = _days(days)
    extra = ["--mode", "no-cost" if name.startswith("no-cost") else mode, "--workers", str(workers)]
    extra += ["--threads-per-job", str(threads), *space, f"seed={seed}"]
    slug = name.replace(",", "").replace(" ", "_").replace("=", "")
    return exp.search("distdnas", shards, format_days(train_days), val_day, f"search_{slug}", *extra)


def results(
    base: str,
    days: int = 6,
    rows_per_day: int = 100_000,
    seed: int = 0,
    searches: list[str] | None = None,
    space: list[str] | None = None,
    train: list[str] | None = None,
) -> str:
    """Discovered models (each search's arch.json) vs DLRM and DCN-v2, and the search times."""
    exp = Experiment(base, "distdnas_results")
    space, train = space or SPACE, train or TRAIN
    train_days, val_day, eval_day = _days(days)
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed)
    found = {name: _search(exp, shards, days, name, seed, space) for name in searches or list(SEARCHES)}
    models: dict[str, list[str]] = {"dlrm": ["--model", "dlrm"], "dcn_v2": ["--model", "dcn_v2"]}
    for name, record in found.items():
        if name != "one-shot, all cores":  # the same search as on 1 worker, only faster
            models[f"distdnas ({name})"] = ["--arch", f"{record['dir']}/arch.json"]
    results = {}
    for name, model in models.items():
        extra = [] if name == "dlrm" else [f"baseline_run={exp.dir}/runs/dlrm"]
        slug = name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "").replace("=", "")
        results[name] = exp.train(
            model, shards, format_days(train_days), eval_day, slug, *train, *extra, f"seed={seed}"
        )
    one = found.get("one-shot, 1 worker")
    lines = [
        f"## DistDNAS: synth --preset small --seed {seed}, {days} days x {rows_per_day:,} rows",
        "",
        f"Run `{exp.dir}`. Search on days {format_days(train_days)} (validation day {val_day}); "
        f"models trained on days {format_days(train_days)} and evaluated on day {eval_day}.",
        f"Search settings: {' '.join(space)}; training: {' '.join(train)}.",
        "",
        *metrics_table(results, exp.bayes(eval_day)),
        "",
        "| search | threads per job | jobs wall-clock s | command s | speed-up vs one-shot on 1 worker |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in found.items():
        f = r["findings"]
        ratio = f"{one['findings']['search_seconds'] / f['search_seconds']:.2f}x" if one else ""
        lines.append(
            f"| {name} | {f['threads_per_job']} | {f['search_seconds']:.0f} | "
            f"{r['command_seconds']:.0f} | {ratio} |"
        )
    lines += ["", "Kept ops (threshold 0.2):"]
    for name, r in found.items():
        choice = r["findings"]["choice"]
        lines.append(
            f"- {name}: "
            + "; ".join(f"b{i}: {'+'.join(d)} | {'+'.join(s)}" for i, (d, s) in enumerate(choice, 1))
        )
    return "\n".join(lines)


def search_speedup(
    base: str, days: int = 6, rows_per_day: int = 200_000, workers: int = 2, seed: int = 0
) -> str:
    """Per-day search with K workers vs one-shot on one worker (each job cores/K threads)."""
    cores = os.cpu_count() or 1
    if workers > cores:
        raise ValueError(f"--workers {workers} > {cores} cores: the goal (>= 0.9 K) is for K <= cores")
    threads = max(1, cores // workers)
    exp = Experiment(base, "search_speedup")
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed)
    train_days, val_day, _ = _days(days)
    rows = {}
    for name, mode, k in (
        ("one-shot, 1 worker", "one-shot", 1),
        (f"distributed, K={workers}", "distributed", workers),
    ):
        extra = [
            "--mode",
            mode,
            "--workers",
            str(k),
            "--threads-per-job",
            str(threads),
            *SPACE,
            f"seed={seed}",
        ]
        r = exp.search("distdnas", shards, format_days(train_days), val_day, f"search_{mode}", *extra)
        jobs = r["findings"]["jobs"]
        rows[name] = (r["findings"]["search_seconds"], sum(j["seconds"] for j in jobs.values()), len(jobs))
    ref = rows["one-shot, 1 worker"][0]
    lines = [
        f"Run `{exp.dir}`: {len(train_days)} search days x {rows_per_day:,} rows, {cores} cores, "
        f"{threads} thread(s) per job",
        "",
        "| search | jobs | wall-clock s | sum of the jobs' training loops s | speed-up |",
        "|---|---:|---:|---:|---:|",
        *[f"| {n} | {j} | {w:.0f} | {loops:.0f} | {ref / w:.2f}x |" for n, (w, loops, j) in rows.items()],
        "",
        f"goal: >= {0.9 * workers:.2f}x (0.9 K)",
    ]
    return "\n".join(lines)


def ablations(base: str, days: int = 6, rows_per_day: int = 100_000, seed: int = 0) -> str:
    """The checks behind two defaults: block_norm and dot_compress_fields (the temperature
    ablation is ``quality.temperature``, judged noise-free)."""
    from recsearch.search.distdnas.config import SpaceConfig
    from recsearch.search.distdnas.space import arch_from_choice

    exp = Experiment(base, "distdnas_ablations")
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed)
    train_days, _, eval_day = _days(days)
    rows: list[tuple[str, str, dict[str, Any]]] = []
    space = SpaceConfig(num_blocks=5, dense_dim=128, sparse_fields=16, head_hidden=[128])
    chain = [(["dot_product", "linear"], ["identity3d"])] + [(["linear"], ["identity3d"])] * 4
    archs = {
        "DotProduct+Linear chain, plain sums": (chain, dataclasses.replace(space, block_norm=False)),
        "DotProduct+Linear chain, block_norm": (chain, space),
        "DotProduct+Linear chain, 16 fields": (
            chain,
            dataclasses.replace(space, block_norm=False, dot_compress_fields=16),
        ),
    }
    for i, (name, (choice, sp)) in enumerate(archs.items()):
        arch = exp.write(f"arch_{i}.json", json.dumps(arch_from_choice(choice, sp, name=f"ablation_{i}")))
        m = exp.train(
            ["--arch", str(arch)], shards, format_days(train_days), eval_day, f"ablation_{i}", *TRAIN
        )
        rows.append((name, f"eval day {eval_day}", m))
    lines = [
        f"Run `{exp.dir}`",
        "",
        "| what | measured on | AUC | NE | MFLOPs/example |",
        "|---|---|---:|---:|---:|",
    ]
    for name, where, m in rows:
        flops = f"{m['flops'] / 1e6:.3f}" if "flops" in m else ""
        lines.append(f"| {name} | {where} | {m['auc']:.4f} | {m['ne']:.4f} | {flops} |")
    return "\n".join(lines)
