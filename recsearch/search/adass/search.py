"""An AdaS&S search under the shared contract (Wei, Yang et al., Algorithm 1, Sec. 3.2-3.3).

1. The supernet (``supernet``) trains on the train days in the shared loop, one subnet per
   step drawn by adaptive sampling (``sampling``): a size per field from P_E and the fields
   kept from P_F, both updated from each step's embeddings and gradients (``supernet/``,
   ``supernet/sampling.json``).
2. The size search (``policy``): REINFORCE of a transformer policy, rewarded by each drawn
   subnet's AUC on ``reward_rows`` rows of the validation day with the supernet's weights,
   penalized by the resource and competition terms (``mode``); ``searches`` times with
   seeds seed, seed+1, ... (the stability report, ``stability.png``).
3. The first search's sizes become ``arch.json`` (the base model with one table per field at
   its size, projected to d_f), retrained from scratch on the train days and scored on the
   validation day (``retrain/``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from iopath.common.file_io import g_pathmgr
from torchmetrics.functional.classification import binary_auroc
from torchrec.datasets.utils import Batch

from recsearch.data.loader import ShardBatches
from recsearch.dist.env import init_distributed
from recsearch.search.adass.config import AdassConfig
from recsearch.search.adass.policy import search_sizes
from recsearch.search.adass.sampling import AdaptiveSampler
from recsearch.search.adass.supernet import AdassSupernet, base_arch
from recsearch.search.common import phase_loop, retrain, run_phase
from recsearch.search.contract import SearchData, SearchOutput, SearchResult
from recsearch.train.checkpoint import checkpoint_meta, load_unsharded
from recsearch.train.loop import LoopHooks, TrainLoop
from recsearch.utils.fileio import read_json, write_json

SAMPLING = "sampling.json"


class AdaptiveSampling(LoopHooks):
    """One subnet per step from the adaptive sampler; its scores updated after the step."""

    dynamic_graph = True

    def __init__(self, config: AdassConfig, fields: int) -> None:
        self.config = config
        self.sampler = AdaptiveSampler(
            fields,
            len(config.sizes),
            lambda_fs=config.lambda_fs,
            keep=config.field_keep,
            floor=config.sample_floor,
            momentum=config.stats_momentum,
        )
        self.choice: list[int] = []
        self.keep: list[bool] = []
        self.counts = np.zeros((fields, len(config.sizes)), dtype=np.int64)

    def before_step(self, loop: TrainLoop, step: int) -> None:
        self.choice, self.keep = self.sampler.draw(self.config.seed, step)

    def loss(self, loop: TrainLoop, batch: Batch) -> torch.Tensor:
        logits = loop.dmp(batch.dense_features, batch.sparse_features, self.choice, self.keep)
        return F.binary_cross_entropy_with_logits(logits, batch.labels.float())

    def after_step(self, loop: TrainLoop, step: int, extra: list[Batch]) -> dict[str, Any]:
        pre: list[torch.Tensor] = loop.module.pre  # type: ignore[assignment]
        variance = np.array([float(e.detach().var()) for e in pre])
        norm = np.array([float(e.detach().abs().mean()) for e in pre])
        grad = np.array([float(e.grad.abs().mean()) if e.grad is not None else 0.0 for e in pre])
        self.sampler.update(self.choice, self.keep, variance, grad, norm)
        self.counts[np.arange(len(self.choice)), self.choice] += 1
        return {"kept_fields": float(sum(self.keep))}

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "counts": self.counts.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state.get("sampler", {}))
        if "counts" in state:
            self.counts = np.asarray(state["counts"], dtype=np.int64)


def _supernet(config: AdassConfig, data: SearchData) -> AdassSupernet:
    return AdassSupernet(
        config=config,
        feature_names=data.feature_names,
        num_embeddings=data.info.num_embeddings,
        num_dense=data.num_dense,
        dense_names=data.info.dense_names,
    )


def supernet_dir(config: AdassConfig, out: SearchOutput) -> str:
    """Where the supernet is trained (or was: ``supernet_from``)."""
    return f"{config.supernet_from}/supernet" if config.supernet_from else out.path("supernet")


def train_supernet(config: AdassConfig, data: SearchData, out: SearchOutput) -> dict[str, Any]:
    """Train the supernet with adaptive sampling; returns (and writes) the sampling record."""
    run_dir = supernet_dir(config, out)
    if config.supernet_from:
        meta = checkpoint_meta(run_dir)
        if meta is None or not g_pathmgr.exists(f"{run_dir}/{SAMPLING}"):
            raise ValueError(f"supernet_from={config.supernet_from} holds no trained AdaS&S supernet")
        theirs = meta["config"]
        differ = sorted(k for k, v in config.supernet_keys().items() if theirs.get(k) != v)
        if differ:
            raise ValueError(
                f"supernet_from={config.supernet_from} was trained with other {', '.join(differ)}"
            )
    if g_pathmgr.exists(f"{run_dir}/{SAMPLING}"):
        return read_json(f"{run_dir}/{SAMPLING}")
    torch.manual_seed(config.seed)
    hooks = AdaptiveSampling(config, len(data.feature_names))
    meta = {"kind": "adass-supernet", "days": data.train_days, "config": config.to_dict()}
    loop = phase_loop(_supernet(config, data), config, out, run_dir, meta, hooks, "supernet")
    steps, seconds = run_phase(loop, config, data)
    env = loop.env
    result = {
        "steps": steps,
        "seconds": seconds,
        "size_rates": np.round(hooks.sampler.size_rates(), 4).tolist(),
        "keep_rates": np.round(hooks.sampler.keep_rates(), 4).tolist(),
        "size_counts": hooks.counts.tolist(),
    }
    if env.is_main:
        write_json(f"{run_dir}/{SAMPLING}", result)
    return result


def _field_weights(config: AdassConfig, rows: list[int]) -> list[float] | None:
    """Per-field weights (mean 1) of the resource penalty: None for the paper's dims, each
    field's share of the table rows for ``resource=rows``."""
    if config.resource == "dims":
        return None
    return [len(rows) * n / sum(rows) for n in rows]


class SubnetReward:
    """AUC of a subnet (a size index per field, every field kept) with the supernet's
    weights, on the first ``rows`` rows of the validation day; cached per subnet."""

    def __init__(self, net: AdassSupernet, data: SearchData, rows: int) -> None:
        self.net = net.eval()
        self.batches = []
        seen = 0
        for b in ShardBatches(data.root, [data.val_day], min(rows, 8192), shuffle=False):
            self.batches.append(b)
            seen += len(b.labels)
            if seen >= rows:
                break
        self.labels = torch.cat([b.labels for b in self.batches]).long()
        self.cache: dict[tuple[int, ...], float] = {}

    def __call__(self, choice: tuple[int, ...]) -> float:
        if choice not in self.cache:
            with torch.no_grad():
                logits = torch.cat(
                    [self.net(b.dense_features, b.sparse_features, list(choice)) for b in self.batches]
                )
            self.cache[choice] = float(binary_auroc(torch.sigmoid(logits), self.labels))
        return self.cache[choice]


def run(config: AdassConfig, data: SearchData, out: SearchOutput) -> SearchResult:
    """The AdaS&S search of ``data``: the supernet, the size searches, the retrain."""
    base_arch(config)  # a bad base model fails before any work
    names = data.feature_names
    with out.phase("supernet"):
        sampling = train_supernet(config, data, out)
    lambda_r, lambda_c = config.penalties()
    with out.phase("search"):
        done = out.path("searches.json")
        if g_pathmgr.exists(done):
            searches = read_json(done)
        else:
            net = load_unsharded(supernet_dir(config, out), _supernet(config, data))
            reward = SubnetReward(net, data, config.reward_rows)
            searches = []
            field_weights = _field_weights(config, data.info.num_embeddings)
            for s in range(config.searches):
                started = time.perf_counter()
                r = search_sizes(
                    reward,
                    len(names),
                    config.sizes,
                    seed=config.seed + s,
                    steps=config.policy_steps,
                    samples=config.policy_samples,
                    lr=config.policy_lr,
                    dim=config.policy_dim,
                    layers=config.policy_layers,
                    lambda_r=lambda_r,
                    lambda_c=lambda_c,
                    field_weights=field_weights,
                )
                r["seed"] = config.seed + s
                r["sizes"] = [config.sizes[t] for t in r["choice"]]
                r["val_auc"] = reward(tuple(r["choice"]))
                r["seconds"] = time.perf_counter() - started
                searches.append(r)
            if init_distributed().is_main:
                write_json(done, searches)
    chosen = dict(zip(names, searches[0]["sizes"], strict=True))
    arch = base_arch(config)
    arch["name"] = f"adass_{config.mode}"
    arch["embedding"]["dims"] = {f: d for f, d in chosen.items() if d != config.common_dim}
    stability = _stability(names, [s["sizes"] for s in searches])
    n = data.info.num_embeddings
    findings: dict[str, Any] = {
        "mode": config.mode,
        "scheme": config.scheme,
        "lambda_r": lambda_r,
        "lambda_c": lambda_c,
        "resource": config.resource,
        "sizes": chosen,
        "embedding_params": sum(d * rows for d, rows in zip(chosen.values(), n, strict=True)),
        "ues_embedding_params": {str(d): d * sum(n) for d in config.sizes},
        "supernet": {k: sampling[k] for k in ("steps", "seconds", "size_rates", "keep_rates")},
        "searches": [{k: s[k] for k in ("seed", "sizes", "val_auc", "seconds", "history")} for s in searches],
        "stability": stability,
        "phase_seconds": {k: round(v, 3) for k, v in out.phases.items()},
    }
    plots = [_plot_stability(names, config.sizes, [s["sizes"] for s in searches], out.path("stability.png"))]
    if config.do_retrain:
        with out.phase("retrain"):
            findings["retrain"] = retrain(arch, config.retrain, config.seed, data, out)
    return SearchResult(arch=arch, findings=findings, plots=plots, report=_report(findings))


def _stability(names: list[str], runs: list[list[int]]) -> dict[str, Any]:
    """Per field: the size chosen most often over the searches and how often."""
    out = {}
    for i, f in enumerate(names):
        size, count = Counter(r[i] for r in runs).most_common(1)[0]
        out[f] = {"mode_size": size, "mode_share": round(count / len(runs), 4)}
    return out


def _plot_stability(names: list[str], sizes: list[int], runs: list[list[int]], path: str) -> str:
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    share = np.array([[sum(r[i] == d for r in runs) / len(runs) for d in sizes] for i in range(len(names))])
    fig, ax = plt.subplots(figsize=(0.3 * len(names) + 2, 3.2))
    bottom = np.zeros(len(names))
    for j, d in enumerate(sizes):
        ax.bar(range(len(names)), share[:, j], bottom=bottom, label=f"size {d}")
        bottom += share[:, j]
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel(f"share of {len(runs)} searches")
    ax.legend(fontsize=6, ncol=len(sizes))
    save_figure(fig, path)
    return path.rsplit("/", 1)[-1]


def _report(f: dict[str, Any]) -> str:
    lines = [
        f"Mode {f['mode']} (lambda_r {f['lambda_r']}, lambda_c {f['lambda_c']}), {f['scheme']} tables. "
        "Chosen sizes: " + ", ".join(f"{k} {v}" for k, v in f["sizes"].items()),
        "",
        f"Embedding parameters {f['embedding_params']:,} (uniform: "
        + ", ".join(f"{d}: {p:,}" for d, p in f["ues_embedding_params"].items())
        + ").",
        "",
        f"{len(f['searches'])} search(es); the mode size's share per field: "
        + ", ".join(f"{k} {v['mode_share']:.2f}" for k, v in f["stability"].items()),
    ]
    if "retrain" in f:
        r = f["retrain"]
        lines += ["", f"Retrained from scratch: validation AUC {r['auc']:.4f}, logloss {r['logloss']:.4f}."]
    return "\n".join(lines)
