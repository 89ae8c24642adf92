"""A DNIS search under the shared contract (Cheng et al., Algorithm 1).

1. Frequency blocks per field from the shards' saved counts (``blocks``).
2. The search model (``supernet``: blocked tables at K, alpha, the base model) trains on
   the train days in the shared loop; after each weight step alpha takes an Adam step on a
   batch of the validation day, its gradient normalized per row (Eq. 8), then clipped into
   [0, 1] (``search/``, ``search/alpha.json``).
3. Pruning (``prune``): alpha x E ranked per column, kept in groups of 4 up to total / CR,
   for ``cr`` and every rate of ``sweep``.
4. Each pruned model is an ordinary arch (the base model with ``embedding.blocks``: one
   TorchRec table per (field, block) at its dim), retrained from scratch on the train days
   and scored on the validation day (``retrain_cr<CR>/``). ``arch.json`` is the ``cr`` one,
   ``pruned/cr<CR>.json`` each rate's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr

from recsearch.data.loader import ShardBatches
from recsearch.data.vocab import saved_counts
from recsearch.dist.env import init_distributed
from recsearch.models.arch import save_arch
from recsearch.models.blocked import block_rows
from recsearch.search.bilevel import ValidationSteps
from recsearch.search.common import phase_loop, retrain, run_phase
from recsearch.search.contract import SearchData, SearchOutput, SearchResult
from recsearch.search.dnis.blocks import frequency_blocks
from recsearch.search.dnis.config import DnisConfig
from recsearch.search.dnis.prune import column_scores, field_scores, prune_dims
from recsearch.search.dnis.supernet import DnisSupernet, base_arch
from recsearch.train.checkpoint import load_unsharded
from recsearch.train.loop import evaluate
from recsearch.utils.fileio import read_json, write_json

ALPHA = "alpha.json"


def normalize_rows_(grad: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Eq. 8: each row of alpha's gradient divided by its mean absolute value (+ eps)."""
    return grad.div_(grad.abs().mean(dim=1, keepdim=True) + eps)


class SelectionSteps(ValidationSteps):
    """alpha steps on the validation day: normalized per row (``grad_norm``), clipped to [0, 1]."""

    def __init__(self, config: DnisConfig, data: SearchData) -> None:
        super().__init__(data, config.batch_size, config.seed + 1, config.arch_lr, config.log_every)
        self.grad_norm, self.alpha_l1 = config.grad_norm, config.alpha_l1

    def arch_parameters(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        return model.arch_parameters()  # type: ignore[operator,no-any-return]

    def before_arch_step(self, model: torch.nn.Module) -> None:
        alpha: torch.Tensor = model.alpha  # type: ignore[assignment]
        grad = alpha.grad
        if grad is None:
            return
        if self.grad_norm:
            normalize_rows_(grad)
        if self.alpha_l1:  # alpha >= 0 (clipped), so the L1 gradient is the constant alpha_l1
            grad.add_(self.alpha_l1)

    def after_arch_step(self, model: torch.nn.Module) -> None:
        with torch.no_grad():
            model.alpha.clamp_(0.0, 1.0)  # type: ignore[operator]

    def record(self, model: torch.nn.Module) -> dict[str, Any]:
        a = model.alpha.detach()  # type: ignore[union-attr,operator]
        return {"alpha_mean": float(a.mean()), "alpha_below_0.1": float((a < 0.1).float().mean())}


def field_blocks(config: DnisConfig, data: SearchData) -> list[list[int]]:
    """Each field's frequency blocks (first ids), from the counts preprocessing saved."""
    starts = []
    for f, n in zip(data.feature_names, data.info.num_embeddings, strict=True):
        counts = saved_counts(data.root, f)
        if len(counts) != n:
            raise ValueError(
                f"{data.root}: the saved counts of {f} cover {len(counts)} ids, its table {n}; "
                "the vocabulary files do not belong to these shards: preprocess again"
            )
        starts.append(frequency_blocks(counts, config.blocks, config.block_bounds))
    return starts


def _supernet(config: DnisConfig, data: SearchData, starts: list[list[int]]) -> DnisSupernet:
    return DnisSupernet(
        config=config,
        feature_names=data.feature_names,
        num_embeddings=data.info.num_embeddings,
        starts=starts,
        num_dense=data.num_dense,
        dense_names=data.info.dense_names,
    )


def search(
    config: DnisConfig, data: SearchData, out: SearchOutput, starts: list[list[int]]
) -> dict[str, Any]:
    """Train the supernet with alpha on the validation day; returns (and writes) alpha."""
    run_dir = out.path("search")
    if g_pathmgr.exists(f"{run_dir}/{ALPHA}"):
        return read_json(f"{run_dir}/{ALPHA}")
    torch.manual_seed(config.seed)
    hooks = SelectionSteps(config, data)
    meta = {"kind": "dnis-search", "days": data.train_days, "starts": starts, "config": config.to_dict()}
    loop = phase_loop(_supernet(config, data, starts), config, out, run_dir, meta, hooks, "search alpha")
    steps, seconds = run_phase(loop, config, data)
    env = loop.env
    val = ShardBatches(
        data.root, [data.val_day], config.eval_batch_size, env.rank, env.world_size, shuffle=False
    )
    supernet_val = evaluate(loop.dmp, val, env)
    result = {
        "alpha": loop.module.alpha.detach().tolist(),  # type: ignore[union-attr,operator]
        "steps": steps,
        "seconds": seconds,
        "supernet_val": supernet_val,
        "history": hooks.history,
    }
    if env.is_main:
        write_json(f"{run_dir}/{ALPHA}", result)
    return result


def block_scores(
    config: DnisConfig, data: SearchData, out: SearchOutput, starts: list[list[int]], alpha: np.ndarray
) -> list[list[np.ndarray]]:
    """Per field, per block: mean |alpha x E| of each column, with the searched tables' weights."""
    net = load_unsharded(out.path("search"), _supernet(config, data, starts))
    tables = net.embeddings.ebc.embedding_bags
    scores = []
    for keys, rows in zip(net.embeddings.keys, net.rows, strict=True):
        scores.append(
            [
                column_scores(tables[f"t_{k}"].weight.detach().numpy(), alpha[r])
                for k, r in zip(keys, rows, strict=True)
            ]
        )
    return scores


def prune(
    config: DnisConfig,
    starts: list[list[int]],
    rows: list[list[int]],
    scores: list[list[np.ndarray]],
    cr: float,
) -> list[list[int]]:
    """Each field's block dims at compression rate ``cr`` (``materialize=field``: one dim per
    field, returned as its only block's)."""
    total = config.emb_dim * sum(sum(r) for r in rows)
    budget = int(total // cr)
    if config.materialize == "field":
        per_field = prune_dims(
            [field_scores(s, r) for s, r in zip(scores, rows, strict=True)],
            [sum(r) for r in rows],
            budget,
            config.prune_unit,
        )
        return [[d] for d in per_field]
    flat = prune_dims(
        [s for field in scores for s in field], [n for r in rows for n in r], budget, config.prune_unit
    )
    dims, i = [], 0
    for s in starts:
        dims.append(flat[i : i + len(s)])
        i += len(s)
    return dims


def _per_table(per_block: list[int], dims: list[int], whole: int) -> list[int]:
    """``per_block`` when a field keeps one table per block, else ``[whole]``: with
    ``materialize=field`` a field's dims list has one entry, its single table."""
    return per_block if len(dims) == len(per_block) else [whole]


def pruned_arch(
    config: DnisConfig, names: list[str], starts: list[list[int]], dims: list[list[int]], cr: float
) -> dict[str, Any]:
    """The base model with one table per (field, block) at the pruned dims."""
    spec = base_arch(config)
    spec["name"] = f"dnis_cr{cr:g}"
    blocks = {}
    for f, s, d in zip(names, starts, dims, strict=True):
        blocks[f] = {"starts": _per_table(s, d, 0), "dims": d}
    spec["embedding"]["blocks"] = blocks
    if not any(d for dd in dims for d in dd):
        raise ValueError(f"cr={cr:g} prunes every embedding column; choose a lower cr")
    return spec


def run(config: DnisConfig, data: SearchData, out: SearchOutput) -> SearchResult:
    """The DNIS search of ``data``: blocks, alpha, pruning to each rate, the retrains."""
    base_arch(config)  # a bad base model fails before any work
    names = data.feature_names
    with out.phase("blocks"):
        starts = field_blocks(config, data)
    rows = [block_rows(s, n) for s, n in zip(starts, data.info.num_embeddings, strict=True)]
    with out.phase("search"):
        searched = search(config, data, out, starts)
    alpha = np.asarray(searched["alpha"], dtype=np.float64)
    with out.phase("prune"):
        scores = block_scores(config, data, out, starts, alpha)
        pruned = {cr: prune(config, starts, rows, scores, cr) for cr in config.compression_rates()}
    full = config.emb_dim * sum(sum(r) for r in rows)
    results: list[dict[str, Any]] = []
    for cr, dims in pruned.items():
        arch = pruned_arch(config, names, starts, dims, cr)
        if init_distributed().is_main:  # every rate's arch, to train any point of the sweep
            g_pathmgr.mkdirs(out.path("pruned"))
            save_arch(out.path(f"pruned/cr{cr:g}.json"), arch)
        kept = sum(
            n * d
            for r, dd in zip(rows, dims, strict=True)
            for n, d in zip(_per_table(r, dd, sum(r)), dd, strict=True)
        )
        entry: dict[str, Any] = {
            "cr": cr,
            "embedding_params": kept,
            "achieved_cr": full / max(kept, 1),
            "dims": dict(zip(names, dims, strict=True)),
        }
        if config.do_retrain:
            with out.phase(f"retrain_cr{cr:g}"):
                entry["retrain"] = retrain(arch, config.retrain, config.seed, data, out, f"retrain_cr{cr:g}")
        results.append(entry)
    arch = pruned_arch(config, names, starts, pruned[config.cr], config.cr)
    findings: dict[str, Any] = {
        "base_model": config.base_model,
        "base_hidden": config.base_hidden,
        "emb_dim": config.emb_dim,
        "materialize": config.materialize,
        "unpruned_embedding_params": full,
        "blocks": {
            f: {"starts": s, "rows": r, "alpha_mean": [round(float(alpha[i].mean()), 4) for i in ids]}
            for f, s, r, ids in zip(names, starts, rows, _alpha_rows(starts), strict=True)
        },
        "search": {k: searched[k] for k in ("steps", "seconds", "supernet_val")},
        "pruned": results,
        "mean_dim": _mean_dims(names, rows, pruned[config.cr]),
        "phase_seconds": {k: round(v, 3) for k, v in out.phases.items()},
    }
    plots = [_plot_dims(findings, out.path("dims.png"))]
    if sum("retrain" in r for r in results) >= 2:
        plots.append(_plot_sweep(results, out.path("sweep.png")))
    return SearchResult(arch=arch, findings=findings, plots=plots, report=_report(findings))


def _alpha_rows(starts: list[list[int]]) -> list[list[int]]:
    out, i = [], 0
    for s in starts:
        out.append(list(range(i, i + len(s))))
        i += len(s)
    return out


def _mean_dims(names: list[str], rows: list[list[int]], dims: list[list[int]]) -> dict[str, float]:
    """Each field's dim averaged over its rows (what one table per field would hold)."""
    out = {}
    for f, r, d in zip(names, rows, dims, strict=True):
        r_ = _per_table(r, d, sum(r))
        out[f] = round(sum(n * x for n, x in zip(r_, d, strict=True)) / max(sum(r_), 1), 3)
    return out


def _plot_dims(findings: dict[str, Any], path: str) -> str:
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    names = list(findings["mean_dim"])
    fig, ax = plt.subplots(figsize=(0.3 * len(names) + 2, 3))
    ax.bar(range(len(names)), [findings["mean_dim"][f] for f in names])
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("dim, averaged over the field's rows")
    ax.set_title(f"DNIS at CR {findings['pruned'][0]['cr']:g}")
    save_figure(fig, path)
    return path.rsplit("/", 1)[-1]


def _plot_sweep(results: list[dict[str, Any]], path: str) -> str:
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    done = sorted((r for r in results if "retrain" in r), key=lambda r: r["embedding_params"])
    x = [r["embedding_params"] for r in done]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    a1.plot(x, [r["retrain"]["auc"] for r in done], "o-")
    a2.plot(x, [r["retrain"]["logloss"] for r in done], "o-")
    for ax, what in ((a1, "validation AUC"), (a2, "validation logloss")):
        ax.set_xscale("log")
        ax.set_xlabel("embedding parameters")
        ax.set_ylabel(what)
        for r, xi, yi in zip(done, x, ax.lines[0].get_ydata(), strict=True):
            ax.annotate(f"CR {r['cr']:g}", (xi, yi), fontsize=7)
    save_figure(fig, path)
    return path.rsplit("/", 1)[-1]


def _report(findings: dict[str, Any]) -> str:
    val = findings["search"]["supernet_val"]
    lines = [
        f"Base model {findings['base_model']} at K = {findings['emb_dim']}; unpruned tables "
        f"{findings['unpruned_embedding_params']:,} parameters. Supernet on the validation day: "
        f"AUC {val['auc']:.4f}, logloss {val['logloss']:.4f}.",
        "",
        "| CR | embedding params | achieved CR | val AUC | val logloss |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in findings["pruned"]:
        m = r.get("retrain", {})
        auc = f"{m['auc']:.4f}" if m else ""
        ll = f"{m['logloss']:.4f}" if m else ""
        lines.append(f"| {r['cr']:g} | {r['embedding_params']:,} | {r['achieved_cr']:.2f} | {auc} | {ll} |")
    lines += [
        "",
        "Mean dim per field (over its rows): "
        + ", ".join(f"{f} {d:g}" for f, d in findings["mean_dim"].items()),
    ]
    return "\n".join(lines)
