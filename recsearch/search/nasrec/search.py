"""A NASRec search under the shared contract: supernet, evolution, top-k retraining, ranking.

1. Supernet training on the train days (the shared loop): one path per step, single-operator
   any-connection, the full supernet with a probability that decays to 0 over the first
   ``full_path_fraction`` of the steps (``supernet/`` holds its checkpoint).
2. Regularized evolution; a subnet's fitness is its logloss on ``eval_batches`` of the
   validation day with inherited weights, after ``finetune_steps`` of fine-tuning of the
   last layer (``evolution.json`` holds the resumable state).
3. The ``top_k`` subnets are trained from scratch as ordinary models through the shared
   job pool (``retrain/top_R``); the best on the validation day becomes ``arch.json``.
4. With ``ranking_subnets``, random subnets are trained stand-alone too (``retrain/rank_R``)
   and the supernet's ranking of them is measured: Kendall tau and Pearson r, with and
   without fine-tuning (``ranking.png``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from iopath.common.file_io import g_pathmgr
from torchrec.datasets.utils import Batch

from recsearch.data.loader import ShardBatches
from recsearch.dist.env import init_distributed
from recsearch.dist.jobs import PoolJob, module_app
from recsearch.profile.counts import interaction_flops
from recsearch.search.contract import SearchData, SearchOutput, SearchResult
from recsearch.search.cost import LATENCY_MODEL, latency_model_for
from recsearch.search.nasrec.config import NASRecConfig
from recsearch.search.nasrec.evolution import Evolution, EvolutionState
from recsearch.search.nasrec.job import CANDIDATES
from recsearch.search.nasrec.space import Genotype, decode, encode, full_path, sample
from recsearch.search.nasrec.supernet import Supernet
from recsearch.search.nasrec.to_arch import arch_from_genotype
from recsearch.train.loop import LoopHooks, TrainLoop
from recsearch.train.metrics import CTRMetrics
from recsearch.utils.fileio import read_json, write_json


class PathSampling(LoopHooks):
    """One path per supernet step: the full supernet while warming up, else a random subnet.
    The draw of step ``t`` depends only on (seed, t), so a resumed run draws the same paths."""

    dynamic_graph = True

    def __init__(self, config: NASRecConfig) -> None:
        self.config = config
        self.path: Genotype = full_path(config.space)
        self.full_steps = 0

    def before_step(self, loop: TrainLoop, step: int) -> None:
        rng = np.random.default_rng([self.config.seed, 7, step])
        warm = int(self.config.full_path_fraction * loop.total_steps)
        p_full = 1.0 - step / warm if step < warm else 0.0
        self.path = full_path(self.config.space) if rng.random() < p_full else sample(rng, self.config.space)

    def loss(self, loop: TrainLoop, batch: Batch) -> torch.Tensor:
        logits = loop.dmp(batch.dense_features, batch.sparse_features, self.path)
        return F.binary_cross_entropy_with_logits(logits, batch.labels.float())


def train_supernet(config: NASRecConfig, data: SearchData, out: SearchOutput) -> TrainLoop:
    """The trained supernet (a finished run is loaded from its checkpoint, not retrained)."""
    env = init_distributed()
    torch.manual_seed(config.seed)
    model = Supernet(
        space=config.space,
        feature_names=data.feature_names,
        num_embeddings=data.info.num_embeddings,
        num_dense=data.num_dense,
        table_cap=config.table_cap,
    )
    meta = {"kind": "nasrec-supernet", "days": data.train_days, "config": config.to_dict()}
    loop = TrainLoop(
        model=model,
        config=config,
        env=env,
        run_dir=out.path("supernet"),
        meta=meta,
        hooks=PathSampling(config),
        desc="supernet",
        progress=out.launch.progress,
    )

    loop.run(data.train_batches(config.batch_size, config.seed))
    return loop


class Scorer:
    """Subnets scored with the supernet's weights: validation logloss (and AUC) on a fixed
    slice of the validation day, after optional fine-tuning of the last layer on a fixed
    stream of train batches (the layer is restored after each subnet)."""

    def __init__(self, loop: TrainLoop, config: NASRecConfig, data: SearchData) -> None:
        self.net: Supernet = loop.module  # type: ignore[assignment]
        self.config = config
        val = ShardBatches(data.root, [data.val_day], config.eval_batch_size, shuffle=False)
        self.val = [b for i, b in zip(range(config.eval_batches or len(val)), val, strict=False)]
        self.train: list[Batch] = []
        if config.finetune_steps:
            stream = ShardBatches(data.root, data.train_days, config.batch_size, seed=config.seed + 1)
            self.train = [b for _, b in zip(range(config.finetune_steps), stream, strict=False)]

    def __call__(self, genotype: Genotype, finetune: bool = True) -> float:
        return self.metrics(genotype, finetune)["logloss"]

    def metrics(self, genotype: Genotype, finetune: bool = True) -> dict[str, float]:
        head = copy.deepcopy(self.net.head.state_dict())
        self.net.eval()
        try:
            if finetune and self.train:
                self._finetune(genotype)
            m = CTRMetrics()
            with torch.no_grad():
                for b in self.val:
                    m.update(self.net(b.dense_features, b.sparse_features, genotype), b.labels)
            return m.compute()
        finally:
            self.net.head.load_state_dict(head)

    def _finetune(self, genotype: Genotype) -> None:
        """Adagrad on the last layer only, cosine-decayed, over the fixed train batches."""
        opt = torch.optim.Adagrad(self.net.head.parameters(), lr=self.config.finetune_lr, eps=1e-2)
        steps = len(self.train)
        for t, b in enumerate(self.train):
            for g in opt.param_groups:
                g["lr"] = self.config.finetune_lr * 0.5 * (1 + np.cos(np.pi * t / steps))
            with torch.no_grad():
                features = self.net.features(b.dense_features, b.sparse_features, genotype)
            loss = F.binary_cross_entropy_with_logits(self.net.head(features).squeeze(-1), b.labels.float())
            opt.zero_grad()
            loss.backward()
            opt.step()


def _latency_cost(config: NASRecConfig, data: SearchData, out: SearchOutput) -> Callable[[Genotype], float]:
    """A subnet -> its predicted latency (ms), from the given latency model or one fitted on
    subnets sampled from this space."""
    space = config.space

    def subnets(n: int) -> list[dict[str, Any]]:
        rng = np.random.default_rng(config.seed + 1)
        return [arch_from_genotype(sample(rng, space), space, data.num_dense) for _ in range(n)]

    shape = (data.num_dense, len(data.feature_names), space.emb_dim)
    model = latency_model_for(
        config.latency_model, subnets, shape, out.path(LATENCY_MODEL), out.launch.progress
    )
    cache: dict[str, float] = {}

    def cost(g: Genotype) -> float:
        key = encode(g)
        if key not in cache:
            cache[key] = model.predict_ms(arch_from_genotype(g, space, data.num_dense), shape)
        return cache[key]

    return cost


def run(config: NASRecConfig, data: SearchData, out: SearchOutput) -> SearchResult:
    """The whole search; see the module docstring."""
    space, n_fields = config.space, len(data.feature_names)
    flops_cache: dict[str, float] = {}

    def flops(g: Genotype) -> float:
        key = encode(g)
        if key not in flops_cache:
            spec = arch_from_genotype(g, space, data.num_dense)
            flops_cache[key] = interaction_flops(spec, data.num_dense, n_fields, space.emb_dim)
        return flops_cache[key]

    cost = _latency_cost(config, data, out) if config.cost_metric == "latency" else flops
    with out.phase("supernet"):
        loop = train_supernet(config, data, out)
    scorer = Scorer(loop, config, data)
    with out.phase("evolution"):
        path = out.path("evolution.json")
        state = EvolutionState.load(path) if g_pathmgr.exists(path) else None
        evo = Evolution(config, scorer, flops, path, cost)
        state = evo.run(state, out.launch.progress)
    candidates = _candidates(config, evo.top(state, config.top_k), data, scorer, out)
    with out.phase("retrain"):
        ran = out.pool().run(_pool_jobs(candidates, out), desc="retrain")
    if ran.dryrun:
        return SearchResult(dryrun=True)
    results = {name: _metrics(out, name) for name in candidates}
    missing = sorted(n for n, r in results.items() if r is None and n.startswith("top_"))
    if missing:
        lines = "; ".join(f"{n}: {ran.failed.get(n, 'no result')}" for n in missing)
        raise ValueError(
            f"retraining failed for {lines}. Rerun the same command to retry (finished runs are kept)"
        )
    top = sorted((n for n in candidates if n.startswith("top_")), key=lambda n: results[n]["logloss"])  # type: ignore[index]
    best = top[0]
    spec = dict(candidates[best]["arch"], name=f"nasrec_{space.name}")
    ranking = _ranking(candidates, results, out)
    findings = {
        "space": space.name,
        "supernet_steps": loop.total_steps,
        "evaluated_subnets": len(state.scored),
        "rounds": state.round,
        "best_fitness_per_round": state.best_per_round,
        "top_k": [
            {"name": n, **{k: candidates[n][k] for k in ("fitness", "flops")}, "retrain": results[n]}
            for n in top
        ],
        "chosen": {
            "name": best,
            "genotype": candidates[best]["genotype"],
            "flops": candidates[best]["flops"],
        },
        "ranking": ranking,
    }
    plots = [_plot_evolution(state, out)] + (["ranking.png"] if ranking else [])
    return SearchResult(arch=spec, findings=findings, plots=plots, report=_report(findings))


def _candidates(
    config: NASRecConfig, top: list[Any], data: SearchData, scorer: Scorer, out: SearchOutput
) -> dict[str, dict[str, Any]]:
    """The subnets to train stand-alone (top-k and ranking), written to ``candidates.json``
    (kept: a rerun trains the same ones)."""
    path = out.path(CANDIDATES)
    if g_pathmgr.exists(path):
        saved: dict[str, dict[str, Any]] = read_json(path)
        return saved
    space = config.space
    chosen: dict[str, dict[str, Any]] = {}
    for r, s in enumerate(top):
        chosen[f"top_{r}"] = {"genotype": s.key, "fitness": s.fitness, "flops": s.flops}
    rng = np.random.default_rng([config.seed, 11])
    with out.phase("ranking"):
        for r in range(config.ranking_subnets):
            g = sample(rng, space)
            plain = scorer.metrics(g, finetune=False)["logloss"]
            tuned = scorer.metrics(g, finetune=True)["logloss"] if config.finetune_steps else plain
            chosen[f"rank_{r}"] = {"genotype": encode(g), "inherited": plain, "inherited_ft": tuned}
    for name, c in chosen.items():
        g = decode(c["genotype"])
        c["arch"] = arch_from_genotype(g, space, data.num_dense, name=f"nasrec_{name}")
        c.setdefault(
            "flops", interaction_flops(c["arch"], data.num_dense, len(data.feature_names), space.emb_dim)
        )
    write_json(path, chosen)
    return chosen


def _pool_jobs(candidates: dict[str, dict[str, Any]], out: SearchOutput) -> list[PoolJob]:
    def job(name: str) -> PoolJob:
        args = ["--search-dir", out.dir, "--job", name]
        return PoolJob(
            name=name,
            app=lambda threads: module_app(
                "recsearch.search.job", args, f"nasrec-{name.replace('_', '-')}", threads, out.launch
            ),
            done=lambda: g_pathmgr.exists(out.path(f"retrain/{name}/metrics.json")),
            summary=lambda: "val logloss {logloss:.5f}".format(
                **read_json(out.path(f"retrain/{name}/metrics.json"))
            ),
        )

    return [job(n) for n in candidates]


def _metrics(out: SearchOutput, name: str) -> dict[str, Any] | None:
    path = out.path(f"retrain/{name}/metrics.json")
    if not g_pathmgr.exists(path):
        return None
    m = read_json(path)
    return {k: m[k] for k in ("logloss", "auc", "ne", "flops", "params")}


def _ranking(
    candidates: dict[str, dict[str, Any]], results: dict[str, Any], out: SearchOutput
) -> dict[str, Any] | None:
    """Kendall tau and Pearson r of the supernet's losses against stand-alone ones."""
    from scipy.stats import kendalltau, pearsonr

    names = [n for n in candidates if n.startswith("rank_") and results.get(n)]
    if len(names) < 3:
        return None
    alone = np.array([results[n]["logloss"] for n in names])
    report: dict[str, Any] = {"subnets": len(names)}
    for key in ("inherited", "inherited_ft"):
        inherited = np.array([candidates[n][key] for n in names])
        tau = kendalltau(inherited, alone)
        r = pearsonr(inherited, alone)
        suffix = "" if key == "inherited" else "_finetuned"
        report[f"kendall_tau{suffix}"] = float(tau.statistic)
        report[f"pearson_r{suffix}"] = float(r.statistic)
    report["points"] = [
        {
            "name": n,
            "standalone": results[n]["logloss"],
            **{k: candidates[n][k] for k in ("inherited", "inherited_ft")},
        }
        for n in names
    ]
    _plot_ranking(report, out.path("ranking.png"))
    return report


def _plot_ranking(report: dict[str, Any], path: str) -> None:
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    pts = report["points"]
    alone = [p["standalone"] for p in pts]
    ax.scatter([p["inherited"] for p in pts], alone, label=f"inherited (tau {report['kendall_tau']:.2f})")
    ax.scatter(
        [p["inherited_ft"] for p in pts],
        alone,
        marker="x",
        label=f"fine-tuned (tau {report['kendall_tau_finetuned']:.2f})",
    )
    ax.set_xlabel("validation logloss, supernet weights")
    ax.set_ylabel("validation logloss, trained stand-alone")
    ax.set_title(f"NASRec ranking over {report['subnets']} random subnets", fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _plot_evolution(state: EvolutionState, out: SearchOutput) -> str:
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    scored = sorted(state.scored.values(), key=lambda s: s.round)
    ax.scatter([s.round for s in scored], [s.fitness for s in scored], s=8, alpha=0.4, label="subnets scored")
    ax.plot(range(len(state.best_per_round)), state.best_per_round, color="tab:red", label="best so far")
    ax.set_xlabel("round (0: the initial population)")
    ax.set_ylabel("fitness: validation logloss, supernet weights")
    ax.legend(fontsize=8)
    save_figure(fig, out.path("evolution.png"))
    return "evolution.png"


def _report(f: dict[str, Any]) -> str:
    rows = [
        f"| {t['name']} | {t['fitness']:.5f} | {t['retrain']['logloss']:.5f} | {t['retrain']['auc']:.4f} | "
        f"{t['flops'] / 1e6:.3f} |"
        for t in f["top_k"]
    ]
    lines = [
        f"## NASRec-{f['space'].capitalize()}: {f['evaluated_subnets']} subnets scored, {f['rounds']} rounds",
        "",
        "## Top subnets, retrained from scratch (validation day)",
        "",
        "| subnet | supernet fitness | retrained logloss | retrained AUC | MFLOPs |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Chosen: {f['chosen']['name']} ({f['chosen']['flops'] / 1e6:.3f} MFLOPs per example).",
    ]
    r = f["ranking"]
    if r:
        lines += [
            "",
            f"## Ranking quality over {r['subnets']} random subnets",
            "",
            f"- supernet weights: Kendall tau {r['kendall_tau']:.3f}, Pearson r {r['pearson_r']:.3f}",
            f"- after fine-tuning: Kendall tau {r['kendall_tau_finetuned']:.3f}, "
            f"Pearson r {r['pearson_r_finetuned']:.3f}",
        ]
    return "\n".join(lines)
