"""Pruning to a compression rate (DNIS Sec. 2.5, Eq. 9) at the granularity TorchRec tables allow.

The paper zeroes single entries of alpha x E below a threshold and stores the result as a
sparse matrix; real tables need one dim per table in multiples of 4. So each block ranks
its columns by mean |alpha_k x E_ik| over its rows, groups them 4 (``unit``) at a time, and
the groups of every block compete by that score (the paper's magnitude rule, per group):
the best groups are kept while their parameters fit in total / CR. A block keeps a prefix
of its ranked groups; a group that does not fit is passed over for smaller ones, so the
kept parameters land within one group of the budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def column_scores(weights: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Mean |alpha_k x E_ik| over a block's rows, per column k (K,)."""
    if len(weights) == 0:
        return np.zeros(len(alpha))
    return np.abs(weights * alpha[None, :]).mean(axis=0)  # type: ignore[no-any-return]


def prune_dims(scores: list[np.ndarray], rows: list[int], budget: int, unit: int) -> list[int]:
    """Each block's kept dim (a multiple of ``unit``), its parameters rows x dim summing to at
    most ``budget``, chosen greedily by score.

    >>> prune_dims([np.array([4., 3, 2, 1]), np.array([1., 1, 0, 0])], [10, 10], budget=60, unit=2)
    [4, 2]
    """
    groups: list[tuple[float, int, int]] = []
    for b, s in enumerate(scores):
        ranked = np.sort(np.asarray(s, dtype=np.float64))[::-1]
        for j in range(len(ranked) // unit):
            groups.append((-float(ranked[j * unit : (j + 1) * unit].mean()), b, j))
    groups.sort()
    kept = [0] * len(scores)
    closed = [False] * len(scores)  # a block whose next group was passed over keeps its prefix
    used = 0
    for _, b, j in groups:
        if closed[b] or kept[b] != j * unit:
            closed[b] = True
            continue
        cost = rows[b] * unit
        if used + cost > budget:
            closed[b] = True
            continue
        kept[b] += unit
        used += cost
    return kept


def field_scores(scores: list[np.ndarray], rows: list[int]) -> np.ndarray:
    """A whole field's column scores (``materialize=field``): each block's ranked scores,
    averaged with the blocks' rows as weights."""
    ranked = np.stack([np.sort(s)[::-1] for s in scores])
    w = np.asarray(rows, dtype=np.float64)
    return (ranked * w[:, None]).sum(axis=0) / max(w.sum(), 1.0)  # type: ignore[no-any-return]


def random_arch(config: Any, found: dict[str, Any], info: Any, rng: np.random.Generator) -> dict[str, Any]:
    """The found sizes dealt to the fields at random: each field keeps its own frequency blocks
    and takes another field's block dims (among fields with as many blocks), so the graph and
    the mix of sizes stay the find's while the search's choice of which field gets what is
    replaced by chance: the comparison's control."""
    import copy

    spec = copy.deepcopy(found)
    spec.pop("tables", None)  # rebuilt from the data for the new sizes
    spec["name"] = "dnis_random"
    blocks = spec["embedding"].get("blocks", {})
    by_length: dict[int, list[str]] = {}
    for name, b in blocks.items():
        by_length.setdefault(len(b["dims"]), []).append(name)
    for names in by_length.values():
        dims = [found["embedding"]["blocks"][n]["dims"] for n in names]
        for name, p in zip(names, rng.permutation(len(names)), strict=True):
            blocks[name]["dims"] = list(dims[p])
    return spec
