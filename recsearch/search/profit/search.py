"""A PROFIT search under the shared contract: order by order, then the retrain.

1. The search network (``supernet``) trains on the train days in the shared loop; after
   each weight step, an architecture step on a batch of the validation day updates the
   weights beta of the order(s) being searched (first-order bilevel, Algorithm 1, Adam
   ``arch_lr``; embeddings looked up without autograd there, so the fused table
   optimizer only ever sees train batches).
2. ``progressive``: order 1 for E_1 passes, then its weights are frozen and order 2 is
   added, continuing from the same network, up to O (``order_o/`` holds each phase's
   checkpoint and ``weights.json``). ``one-step``: every order at once for sum E_o passes.
   ``full-space``: progressive with a free weight per cross. ``random``: no search.
3. Selection: the top N_o crosses of each order by |A_c| (``selection.top_crosses``,
   exact branch and bound), by feature name, become ``arch.json`` (``field_cross`` blocks).
4. The selected crosses are retrained from scratch on the train days and scored on the
   validation day (``retrain/``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr

from recsearch.search.bilevel import ValidationSteps
from recsearch.search.common import phase_loop, retrain, run_phase
from recsearch.search.contract import SearchData, SearchOutput, SearchResult
from recsearch.search.profit.config import ProfitConfig
from recsearch.search.profit.selection import full_space_top, pair_matrix, random_crosses, top_crosses
from recsearch.search.profit.supernet import ProfitSupernet
from recsearch.search.profit.to_arch import arch_from_crosses
from recsearch.train.checkpoint import load_checkpoint
from recsearch.utils.fileio import read_json, write_json

WEIGHTS = "weights.json"


class ArchSteps(ValidationSteps):
    """The searched orders' CP weights step on the validation day (Algorithm 1)."""

    def __init__(self, config: ProfitConfig, data: SearchData, orders: list[int]) -> None:
        super().__init__(data, config.batch_size, config.seed + 1, config.arch_lr, config.log_every)
        self.orders = orders

    def arch_parameters(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        return model.arch_parameters(self.orders)  # type: ignore[operator,no-any-return]

    def record(self, model: torch.nn.Module) -> dict[str, Any]:
        weights = model.arch_weights  # type: ignore[union-attr]
        return {"weight_norm": {str(o): float(weights[o - 1].detach().norm()) for o in self.orders}}  # type: ignore[index]


def _phases(config: ProfitConfig) -> list[list[int]]:
    orders = list(range(1, config.max_order + 1))
    return [orders] if config.mode == "one-step" else [[o] for o in orders]


def _phase_dir(orders: list[int]) -> str:
    return "order_" + "-".join(map(str, orders))


def search_phase(
    config: ProfitConfig, data: SearchData, out: SearchOutput, orders: list[int], previous: str | None
) -> dict[str, Any]:
    """Train the network with ``orders``' weights searched (lower ones frozen), continuing from
    the phase in ``previous``; returns (and writes) the weights of every order."""
    run_dir = out.path(_phase_dir(orders))
    if g_pathmgr.exists(f"{run_dir}/{WEIGHTS}"):
        return read_json(f"{run_dir}/{WEIGHTS}")
    torch.manual_seed(config.seed)
    net = ProfitSupernet(
        config=config,
        feature_names=data.feature_names,
        num_embeddings=data.info.num_embeddings,
        dense_names=data.info.dense_names,
    )
    net.search_orders(orders)  # before sharding: the frozen weights take no gradient at all
    epochs = sum(config.epochs_of(o) for o in orders)
    phase_config = dataclasses.replace(config, epochs=epochs)
    hooks = ArchSteps(config, data, orders)
    meta = {"kind": "profit-search", "orders": orders, "days": data.train_days, "config": config.to_dict()}
    desc = f"search order {'-'.join(map(str, orders))}"
    loop = phase_loop(net, phase_config, out, run_dir, meta, hooks, desc)
    if loop.previous is None and previous is not None:  # continue from the lower orders' network
        load_checkpoint(out.path(previous), loop.dmp, None)
    steps, seconds = run_phase(loop, config, data)
    env = loop.env
    searched: ProfitSupernet = loop.module  # type: ignore[assignment]
    result = {
        "orders": orders,
        **searched.arch_state(),
        "steps": steps,
        "seconds": seconds,
        "history": hooks.history,
    }
    if env.is_main:
        write_json(f"{run_dir}/{WEIGHTS}", result)
    return result


def select(
    config: ProfitConfig, weights: list[Any], order: int, names: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The top N_o crosses of ``order`` by |A_c|, by field name, with their weights."""
    k = config.n_keep(order)
    w = np.asarray(weights[order - 1], dtype=np.float64)
    if config.mode == "full-space":
        top, stats = full_space_top(w, order, k), {"nodes": None, "exact": True}
    else:
        top, stats = top_crosses(w, order, k, config.beam)
    chosen = [{"fields": [names[i] for i in c], "weight": round(a, 6)} for c, a in top]
    return chosen, stats


def run(config: ProfitConfig, data: SearchData, out: SearchOutput) -> SearchResult:
    """The PROFIT search of ``data``: every order's crosses, the arch, the retrain."""
    dense_names = data.info.dense_names
    names = config.fields(data.feature_names, dense_names)
    orders: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    if config.mode == "random":
        rng = np.random.default_rng([config.seed, 0x5EED])
        for o in range(1, config.max_order + 1):
            drawn = random_crosses(rng, len(names), o, config.n_keep(o))
            chosen = [{"fields": [names[i] for i in c], "weight": None} for c in drawn]
            orders.append({"order": o, "crosses": chosen})
    else:
        previous = None
        for phase in _phases(config):
            with out.phase(_phase_dir(phase)):
                last = search_phase(config, data, out, phase, previous)
            previous = _phase_dir(phase)
            for o in phase:
                crosses, stats = select(config, last["weights"], o, names)
                seconds = last["seconds"] if len(phase) == 1 else None
                orders.append({"order": o, "crosses": crosses, "selection": stats, "seconds": seconds})
    selected = {o["order"]: [tuple(c["fields"]) for c in o["crosses"]] for o in orders}
    arch = arch_from_crosses(selected, config, dense_names, name=f"profit_{config.mode}")
    findings: dict[str, Any] = {
        "mode": config.mode,
        "rank": config.rank if config.mode in ("progressive", "one-step") else None,
        "fields": names,
        "orders": orders,
        "phase_seconds": {k: round(v, 3) for k, v in out.phases.items()},
    }
    plots: list[str] = []
    if last and config.max_order >= 2:
        w2 = np.asarray(last["weights"][1], dtype=np.float64)
        pairs = w2 + w2.T if config.mode == "full-space" else pair_matrix(w2)
        np.fill_diagonal(pairs, np.nan)  # a field with itself is no cross
        findings["pair_weights"] = [
            [None if np.isnan(v) else round(float(v), 6) for v in row] for row in pairs
        ]
        plots.append(_plot_pairs(pairs, names, out.path("pair_weights.png")))
    if config.do_retrain:
        with out.phase("retrain"):
            findings["retrain"] = retrain(arch, config.retrain, config.seed, data, out)
    return SearchResult(arch=arch, findings=findings, plots=plots, report=_report(findings))


def _plot_pairs(pairs: np.ndarray, names: list[str], path: str) -> str:
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(0.25 * len(names) + 2, 0.25 * len(names) + 1.5))
    im = ax.imshow(np.abs(pairs), cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_title("|A_ij|: searched weight of each pair of fields")
    fig.colorbar(im, ax=ax, shrink=0.7)
    save_figure(fig, path)
    return path.rsplit("/", 1)[-1]


def _report(findings: dict[str, Any]) -> str:
    lines = [f"Mode {findings['mode']}, CP rank {findings['rank']}.", ""]
    for o in findings["orders"]:
        shown = ", ".join(
            "×".join(c["fields"]) + (f" ({c['weight']:+.3g})" if c["weight"] is not None else "")
            for c in o["crosses"][:10]
        )
        more = f" … and {len(o['crosses']) - 10} more" if len(o["crosses"]) > 10 else ""
        secs = f", searched in {o['seconds']:.0f} s" if o.get("seconds") else ""
        lines.append(f"- order {o['order']} ({len(o['crosses'])} kept{secs}): {shown}{more}")
    if "retrain" in findings:
        r = findings["retrain"]
        lines += ["", f"Retrained from scratch: validation AUC {r['auc']:.4f}, logloss {r['logloss']:.4f}, "
                      f"NE {r['ne']:.4f}, {r['flops'] / 1e6:.3f} MFLOPs/example."]  # fmt: skip
    return "\n".join(lines)
