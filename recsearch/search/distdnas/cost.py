"""Cost-aware regularization: a random-forest cost model over sampled architectures.

Sample discrete architectures of the space, measure each one's cost (forward FLOPs
per example of its interaction graph, counted by the shared ``recsearch.profile``
counter; or its latency on this machine, predicted by the shared per-op latency model of
``recsearch.search.cost``), fit a random
forest from "how many blocks keep op j" to the cost (``by_block``: "does block 1 keep
op j" and "how many of blocks 2..N keep op j", as the paper finds block 1's costs
unique and the others' identical), and take each feature's permutation importance,
clipped at 0 and normalized, as the cost weight s_bj. The search adds R = gamma * sum
over blocks and ops of s_bj * p_bj to the architecture loss (p_bj: the op's noise-free
mixing weight; paper gamma = 0.004).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

from recsearch.profile.latency_model import LatencyModel
from recsearch.search.cost import arch_cost, cost_unit
from recsearch.search.distdnas.config import SpaceConfig
from recsearch.search.distdnas.space import DENSE_OPS, OP_LABELS, SPARSE_OPS, arch_from_choice
from recsearch.search.distdnas.space import sample_choice as _sample_choice

ALL_OPS = DENSE_OPS + SPARSE_OPS


def choice_features(choice: list[tuple[list[str], list[str]]], by_block: bool = False) -> list[int]:
    """The cost model's inputs: how many blocks keep each op, in ``ALL_OPS`` order; ``by_block``:
    whether block 1 keeps each op, then how many of blocks 2..N keep it (block 1 reads the raw
    features, so its ops cost differently; the paper's Sec. III-C)."""
    if by_block:
        return choice_features(choice[:1]) + choice_features(choice[1:])
    return [sum(op in d or op in s for d, s in choice) for op in ALL_OPS]


def cost_groups(by_block: bool) -> list[str]:
    return ["block 1", "blocks 2+"] if by_block else ["all blocks"]


def fit_cost_table(
    space: SpaceConfig,
    num_dense: int,
    num_fields: int,
    samples: int = 64,
    metric: str = "flops",
    seed: int = 0,
    progress: bool = True,
    by_block: bool = False,
    latency: LatencyModel | None = None,
) -> dict[str, Any]:
    """Sample architectures, fit the random forest, return the cost table (JSON-able); with
    ``by_block`` block 1's ops get cost weights of their own; ``latency``: the latency model
    that prices architectures under metric latency."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    price = arch_cost(metric, (num_dense, num_fields, space.emb_dim), latency)
    if samples < 8:
        raise ValueError(f"the cost model needs at least 8 sampled architectures, got {samples}")
    rng = np.random.default_rng(seed)
    rows, costs = [], []
    for _ in tqdm(range(samples), desc=f"cost model ({metric})", disable=not progress, unit="arch"):
        choice = _sample_choice(rng, space)
        rows.append(choice_features(choice, by_block))
        costs.append(price(arch_from_choice(choice, space)))
    x, y = np.array(rows, dtype=np.float64), np.array(costs, dtype=np.float64)
    forest = RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=1).fit(x, y)
    imp = permutation_importance(forest, x, y, n_repeats=10, random_state=seed, n_jobs=1)
    raw = np.clip(imp.importances_mean, 0.0, None)
    weights = raw / raw.sum() if raw.sum() > 0 else np.full(len(raw), 1.0 / len(raw))
    groups = cost_groups(by_block)
    return {
        "metric": metric,
        "unit": cost_unit(metric, latency),
        "space": space.to_dict(),
        "num_dense": num_dense,
        "num_fields": num_fields,
        "samples": samples,
        "seed": seed,
        "forest_r2": float(forest.score(x, y)),
        "ops": ALL_OPS,
        "groups": groups,  # the weights are group-major: len(groups) x len(ops)
        "features": [f"{g}: {op}" for g in groups for op in ALL_OPS],
        "importance": [float(v) for v in imp.importances_mean],
        "importance_std": [float(v) for v in imp.importances_std],
        "weights": [float(v) for v in weights],
        "cost_min": float(y.min()),
        "cost_median": float(np.median(y)),
        "cost_max": float(y.max()),
    }


def cost_weights(table: dict[str, Any], num_blocks: int) -> tuple[list[list[float]], list[list[float]]]:
    """The cost weights s_bj of each block's dense and sparse ops, (N, 5) each, scaled so a
    block's weights sum to 1 on average (with one group: each block's, as in the paper)."""
    groups = table.get("groups", ["all blocks"])
    w = np.array(table["weights"], dtype=np.float64).reshape(len(groups), len(ALL_OPS))
    per_block = np.stack([w[min(b, len(groups) - 1)] for b in range(num_blocks)])
    per_block *= num_blocks / per_block.sum() if per_block.sum() > 0 else 0.0
    n = len(DENSE_OPS)
    return per_block[:, :n].tolist(), per_block[:, n:].tolist()


def plot_cost_table(table: dict[str, Any], path: str) -> None:
    """A bar chart of each op's normalized cost weight (the paper's Figure 5)."""
    from recsearch.utils.plots import pyplot, save_figure

    plt = pyplot()
    groups = table.get("groups", ["all blocks"])
    fig, ax = plt.subplots(figsize=(8 * len(groups), 3.6))
    labels = [OP_LABELS[op] + (f" ({g})" if len(groups) > 1 else "") for g in groups for op in table["ops"]]
    colors = (["tab:blue"] * len(DENSE_OPS) + ["tab:orange"] * len(SPARSE_OPS)) * len(groups)
    ax.bar(labels, table["weights"], color=colors)
    ax.set_ylabel("cost weight s_j (normalized)")
    ax.set_title(
        f"Op cost importance: random forest over {table['samples']} sampled archs "
        f"({table['unit']}, R²={table['forest_r2']:.2f})",
        fontsize=9,
    )
    ax.tick_params(axis="x", rotation=35)
    save_figure(fig, path)
