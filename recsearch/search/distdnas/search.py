"""A DistDNAS search under the shared contract: cost model, day jobs, aggregation, arch.json.

``DIR`` layout (besides the contract's ``request.json``, ``arch.json``, ``search.json``,
``report.md``)::

    cost_table.json/png the cost model (absent in no-cost mode or with cost_gamma 0)
    latency_model.json  cost_metric=latency: the per-op latency model that priced the samples
    plan.json           the jobs of the mode: names and days
    day_{d}/            one job per day: weights.json (done), checkpoint/, tensorboard/
    one_shot/           the one-shot ablation's single job
    logs/               the local scheduler's job logs
    aggregate.json/png  averaged weights and their heatmap
"""

from __future__ import annotations

from typing import Any

import numpy as np
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import format_days
from recsearch.dist.jobs import PoolJob, module_app
from recsearch.profile.latency_model import LatencyModel
from recsearch.search.contract import SearchData, SearchOutput, SearchResult
from recsearch.search.cost import LATENCY_MODEL, latency_model_for
from recsearch.search.distdnas.aggregate import aggregate, format_weights
from recsearch.search.distdnas.config import MODES, DistDNASConfig
from recsearch.search.distdnas.cost import fit_cost_table, plot_cost_table
from recsearch.search.distdnas.job import PLAN, WEIGHTS, job_done
from recsearch.search.distdnas.space import arch_from_choice, sample_choice
from recsearch.search.distdnas.to_arch import arch_from_aggregate
from recsearch.utils.fileio import read_json, write_json


def plan_jobs(mode: str, days: list[int]) -> list[tuple[str, list[int]]]:
    """(job directory name, days) of each search job of ``mode``.

    Example:
        >>> plan_jobs("distributed", [0, 1])
        [('day_0', [0]), ('day_1', [1])]
        >>> plan_jobs("one-shot", [0, 1])
        [('one_shot', [0, 1])]
        >>> plan_jobs("fresh", [0, 1])
        [('day_1', [1])]
    """
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; choose from {', '.join(MODES)}")
    if not days:
        raise ValueError("no search days given")
    if mode == "one-shot":
        return [("one_shot", list(days))]
    if mode == "fresh":
        return [(f"day_{days[-1]}", [days[-1]])]
    return [(f"day_{d}", [d]) for d in days]


def prepare(config: DistDNASConfig, data: SearchData, out: SearchOutput) -> dict[str, Any]:
    """Fit the cost model (unless off) and write ``plan.json``; returns the plan."""
    for name, days in plan_jobs(config.mode, data.train_days):
        rows = sum(data.info.days[d] for d in days)
        if rows < 2 * config.batch_size:  # each step takes a weight batch and an architecture batch
            raise ValueError(
                f"job {name}: days {format_days(days)} hold {rows:,} rows, fewer than two batches of "
                f"batch_size={config.batch_size}; lower batch_size"
            )
    uses_cost = config.mode != "no-cost" and config.cost_gamma > 0
    cost_path = out.path("cost_table.json")
    plan: dict[str, Any] = {
        "mode": config.mode,
        "jobs": [{"name": n, "days": d} for n, d in plan_jobs(config.mode, data.train_days)],
        "cost_table": cost_path if uses_cost else None,
    }
    if uses_cost and not g_pathmgr.exists(cost_path):
        with out.phase("cost_model"):
            latency = _latency_model(config, data, out) if config.cost_metric == "latency" else None
            table = fit_cost_table(
                config.space,
                data.num_dense,
                len(data.feature_names),
                config.cost_samples,
                config.cost_metric,
                config.seed,
                out.launch.progress,
                config.cost_by_block,
                latency,
            )
            write_json(cost_path, table)
            plot_cost_table(table, out.path("cost_table.png"))
    write_json(out.path(PLAN), plan)
    return plan


def _latency_model(config: DistDNASConfig, data: SearchData, out: SearchOutput) -> LatencyModel:
    """The given latency model, or one fitted on architectures sampled from this space."""
    space = config.space

    def sample(n: int) -> list[dict[str, Any]]:
        rng = np.random.default_rng(config.seed + 1)
        return [arch_from_choice(sample_choice(rng, space), space) for _ in range(n)]

    shape = (data.num_dense, len(data.feature_names), space.emb_dim)
    return latency_model_for(
        config.latency_model, sample, shape, out.path(LATENCY_MODEL), out.launch.progress
    )


def pool_jobs(plan: dict[str, Any], out: SearchOutput) -> list[PoolJob]:
    """The plan's jobs for the shared job pool (each runs ``python -m recsearch.search.job``)."""

    def job(name: str, days: list[int]) -> PoolJob:
        args = ["--search-dir", out.dir, "--job", name]
        return PoolJob(
            name=name,
            app=lambda threads: module_app(
                "recsearch.search.job", args, f"distdnas-{name.replace('_', '-')}", threads, out.launch
            ),
            done=lambda: job_done(out.path(name)),
            summary=lambda: _job_line(out.path(name)),
            label=f"days {format_days(days)}",
        )

    return [job(j["name"], j["days"]) for j in plan["jobs"]]


def _job_line(job_dir: str) -> str:
    w = read_json(f"{job_dir}/{WEIGHTS}")
    val = w.get("val") or {}
    return f"done in {w['seconds']:.0f} s, {w['steps']} steps" + (
        f", supernet val AUC {val['auc']:.4f}" if "auc" in val else ""
    )


def run(config: DistDNASConfig, data: SearchData, out: SearchOutput) -> SearchResult:
    """The whole search: cost model, day jobs through torchx, Eq. 6 average, arch.json."""
    plan = prepare(config, data, out)
    with out.phase("search_jobs"):
        ran = out.pool().run(pool_jobs(plan, out), desc="search jobs")
    if ran.dryrun:
        return SearchResult(dryrun=True)
    if ran.failed and not config.allow_missing:
        lines = "; ".join(f"{n}: {r}" for n, r in ran.failed.items())
        raise ValueError(
            f"search job(s) failed: {lines}. Rerun the same command to retry them (finished "
            f"jobs are kept), or add --allow-missing to aggregate without them"
        )
    with out.phase("aggregate"):
        agg = aggregate(out.dir, config.allow_missing)
        agg.update(
            search_seconds=ran.seconds,
            workers=out.launch.workers,
            threads_per_job=ran.threads,
            scheduler=out.launch.scheduler,
        )
        write_json(out.path("aggregate.json"), agg)
    spec = arch_from_aggregate(agg, config.threshold, config.stack, "", out.dir)
    cost = read_json(plan["cost_table"]) if plan["cost_table"] else None
    findings = {
        "mode": config.mode,
        "jobs": agg["per_job"],
        "missing_jobs": agg["missing"],
        "dense_ops": agg["dense_ops"],
        "sparse_ops": agg["sparse_ops"],
        "dense_weights": agg["dense_weights"],
        "sparse_weights": agg["sparse_weights"],
        "average": agg["average"],
        "entropy": agg["entropy"],
        "threshold": config.threshold,
        "stack": config.stack,
        "choice": spec["meta"]["choice"],
        "cost_weights": dict(zip(cost.get("features", cost["ops"]), cost["weights"], strict=True))
        if cost
        else None,
        "cost_forest_r2": cost["forest_r2"] if cost else None,
        "search_seconds": ran.seconds,
        "threads_per_job": ran.threads,
        "workers": out.launch.workers,
    }
    plots = ["aggregate.png"] + (["cost_table.png"] if cost else [])
    return SearchResult(arch=spec, findings=findings, plots=plots, report=_report(agg, spec, config))


def _report(agg: dict[str, Any], spec: dict[str, Any], config: DistDNASConfig) -> str:
    jobs = [
        f"| {name} | {format_days(j['days'])} | {j['steps']} | {j['seconds']:.0f} | "
        + (f"{j['val']['auc']:.4f} | {j['val']['logloss']:.4f} |" if j.get("val") else " | |")
        for name, j in agg["per_job"].items()
    ]
    kept = [
        f"- block {i}: dense {' + '.join(d)} | sparse {' + '.join(s)}"
        for i, (d, s) in enumerate(spec["meta"]["choice"], 1)
    ]
    return "\n".join(
        [
            f"## Averaged architecture weights ({agg['mode']}, {len(agg['sources'])} job(s), "
            f"mean of {agg['average']}, softmax(alpha / {agg['temperature']:g}))",
            "",
            format_weights(agg, markdown=True),
            "",
            "Entropy of each block's weights / log(ops) (1: uniform, 0: one op): dense "
            + ", ".join(f"{e:.2f}" for e in agg["entropy"]["dense"])
            + "; sparse "
            + ", ".join(f"{e:.2f}" for e in agg["entropy"]["sparse"]),
            "",
            f"## Kept ops at threshold {config.threshold} (stack {config.stack})",
            "",
            *kept,
            "",
            "## Jobs (supernet scored on the validation day with noise-free weights)",
            "",
            "| job | days | steps | seconds | val AUC | val logloss |",
            "|---|---|---:|---:|---:|---:|",
            *jobs,
        ]
    )
