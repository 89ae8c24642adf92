"""Aggregation of the day jobs (Eq. 6), its heatmap, and a text table of the weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from recsearch.data.criteo import format_days
from recsearch.search.distdnas.job import PLAN, WEIGHTS, job_done
from recsearch.search.distdnas.space import DENSE_OPS, OP_LABELS, SPARSE_OPS
from recsearch.utils.fileio import read_json, write_json


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = x / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def weight_entropy(weights: np.ndarray) -> list[float]:
    """Per block, the entropy of the mixing weights / log(ops): 1 uniform, 0 a single op."""
    w = np.clip(weights, 1e-12, 1.0)
    return (-(w * np.log(w)).sum(-1) / np.log(w.shape[-1])).round(4).tolist()


def aggregate(out: str, allow_missing: bool = False) -> dict[str, Any]:
    """Average the jobs' architectures (Eq. 6) into ``aggregate.json`` (+ heatmap PNG): their
    mixing weights (``average=weights``, the paper) or their logits (``average=logits``)."""
    plan = read_json(f"{out}/{PLAN}")
    request = read_json(f"{out}/request.json")
    present = [j for j in plan["jobs"] if job_done(f"{out}/{j['name']}")]
    missing = [j for j in plan["jobs"] if not job_done(f"{out}/{j['name']}")]
    if not present:
        raise ValueError(f"{out}: no search job has finished; nothing to aggregate")
    if missing and not allow_missing:
        names = ", ".join(f"{j['name']} (days {format_days(j['days'])})" for j in missing)
        raise ValueError(
            f"missing search results: {names}; rerun the search to finish them, or set "
            f"allow_missing=true (--allow-missing) to aggregate the {len(present)} present"
        )
    weights = []
    for j in present:
        try:
            weights.append(read_json(f"{out}/{j['name']}/{WEIGHTS}"))
        except ValueError:
            raise ValueError(
                f"{out}/{j['name']}/{WEIGHTS} is damaged; delete it and rerun to redo that job"
            ) from None
    config = request["config"]
    # each job's final lambda (the same for all: one schedule); older jobs did not record it
    temps = [float(w.get("temperature") or config["temperature"]) for w in weights]
    temperature = temps[0]
    alpha = np.mean([w["alpha"] for w in weights], axis=0)
    beta = np.mean([w["beta"] for w in weights], axis=0)
    if config.get("average", "logits") == "weights":  # Eq. 6: the mean of the days' weights
        dense = np.mean([_softmax(np.array(w["alpha"]), t) for w, t in zip(weights, temps, strict=True)], 0)
        sparse = np.mean([_softmax(np.array(w["beta"]), t) for w, t in zip(weights, temps, strict=True)], 0)
    else:  # softmax of the mean logits
        dense, sparse = _softmax(alpha, temperature), _softmax(beta, temperature)
    result = {
        "method": "distdnas",
        "mode": plan["mode"],
        "days": request["train_days"],
        "sources": [j["name"] for j in present],
        "missing": [j["name"] for j in missing],
        "space": config["space"],
        "temperature": temperature,
        "dense_ops": DENSE_OPS,
        "sparse_ops": SPARSE_OPS,
        "alpha": alpha.tolist(),
        "beta": beta.tolist(),
        "average": config.get("average", "logits"),
        "dense_weights": dense.tolist(),
        "sparse_weights": sparse.tolist(),
        "entropy": {"dense": weight_entropy(dense), "sparse": weight_entropy(sparse)},
        "per_job": {
            j["name"]: {
                "days": j["days"],
                "dense_weights": w["dense_weights"],
                "sparse_weights": w["sparse_weights"],
                "seed": w.get("seed"),
                "temperature": w.get("temperature"),
                "heldout": w.get("heldout"),
                "val": w.get("val"),
                "steps": w.get("steps"),
                "seconds": w.get("seconds"),
            }
            for j, w in zip(present, weights, strict=True)
        },
        "job_seconds": sum(float(w.get("seconds") or 0.0) for w in weights),
    }
    write_json(f"{out}/aggregate.json", result)
    plot_heatmap(result, f"{out}/aggregate.png")
    return result


def plot_heatmap(agg: dict[str, Any], path: str) -> None:
    """Aggregated mixing weights per block and op (the paper's Figure 6)."""
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    blocks = len(agg["dense_weights"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.4 + 0.45 * blocks))
    fig.subplots_adjust(wspace=0.45)
    for ax, key, ops, title in (
        (axes[0], "dense_weights", agg["dense_ops"], "dense ops (alpha)"),
        (axes[1], "sparse_weights", agg["sparse_ops"], "sparse ops (beta)"),
    ):
        w = np.array(agg[key])
        im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(0.5, float(w.max())), aspect="auto")
        ax.set_xticks(range(len(ops)), [OP_LABELS[o] for o in ops], rotation=35, ha="right")
        ax.set_yticks(range(blocks), [f"block {i + 1}" for i in range(blocks)])
        for i in range(blocks):
            for j in range(len(ops)):
                color = "white" if w[i, j] < 0.35 else "black"
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04)
    fig.suptitle(f"DistDNAS aggregated weights ({agg['mode']}, {len(agg['sources'])} job(s))", fontsize=10)
    save_figure(fig, path)


def format_weights(agg: dict[str, Any], markdown: bool = False) -> str:
    """A table of the aggregated weights, one row per block (text, or markdown)."""
    labels = [OP_LABELS[o] for o in agg["dense_ops"] + agg["sparse_ops"]]
    rows = [d + s for d, s in zip(agg["dense_weights"], agg["sparse_weights"], strict=True)]
    if markdown:
        lines = ["| block | " + " | ".join(labels) + " |", "|---:|" + "---:|" * len(labels)]
        lines += [f"| {i} | " + " | ".join(f"{v:.3f}" for v in r) + " |" for i, r in enumerate(rows, 1)]
        return "\n".join(lines)
    lines = [f"{'block':>5} " + " ".join(f"{x[:10]:>10}" for x in labels)]
    lines += [f"{i:>5} " + " ".join(f"{v:>10.3f}" for v in r) for i, r in enumerate(rows, 1)]
    return "\n".join(lines)
