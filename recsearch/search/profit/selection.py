"""Selecting the top-N crosses of an order by |A_c| without scoring every cross.

A_c = sum_r prod_k beta_r[c_k] (PROFIT's Eq. 6). With M = 39 fields there are 9,139
triples and 82,251 quadruples; listing them all per selection grows as M^o. Instead a
best-first branch and bound builds crosses one field at a time (fields in increasing
order). A partial cross (c_1 < ... < c_j) with m fields still to add can reach at most

    sum_r |prod_k beta_r[c_k]| * (product of the m largest |beta_r[t]| over t > c_j),

so partial crosses are expanded in order of that bound, and the search stops once the
N-th best complete cross found beats every bound left: the result equals exhaustive
ranking (``exhaustive_top``, the tests check it). ``max_nodes`` caps the work; a capped
search returns its best so far and says so (``exact`` False).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import numpy as np


def cross_weight(beta: np.ndarray, cross: tuple[int, ...]) -> float:
    """A_c for one cross (field indices) from CP components ``beta`` (R, M)."""
    return float(np.prod(beta[:, list(cross)], axis=1).sum())


def exhaustive_top(beta: np.ndarray, order: int, k: int) -> list[tuple[tuple[int, ...], float]]:
    """Every cross scored: the reference the branch and bound must equal (small M only)."""
    scored = [(c, cross_weight(beta, c)) for c in itertools.combinations(range(beta.shape[1]), order)]
    scored.sort(key=lambda cw: (-abs(cw[1]), cw[0]))
    return scored[:k]


def _suffix_top_products(a: np.ndarray, order: int) -> np.ndarray:
    """P[r, i, m]: product of the m largest of a[r, i:] (m = 0..order; 0 where fewer exist)."""
    r_count, m_count = a.shape
    out = np.zeros((r_count, m_count + 1, order + 1))
    out[:, :, 0] = 1.0
    for i in range(m_count - 1, -1, -1):
        top = -np.sort(-a[:, i:], axis=1)[:, :order]
        for m in range(1, min(order, top.shape[1]) + 1):
            out[:, i, m] = np.prod(top[:, :m], axis=1)
    return out


def top_crosses(
    beta: np.ndarray, order: int, k: int, max_nodes: int = 200_000
) -> tuple[list[tuple[tuple[int, ...], float]], dict[str, Any]]:
    """The ``k`` crosses of ``order`` with the largest |A_c|, best first (ties: smaller indices).

    Returns the crosses with their weights A_c and stats: ``nodes`` expanded, ``exact``.
    """
    beta = np.asarray(beta, dtype=np.float64)
    m_fields = beta.shape[1]
    k = min(k, _n_choose(m_fields, order))
    a = np.abs(beta)
    reach = _suffix_top_products(a, order)
    best: list[tuple[float, tuple[int, ...], float]] = []  # min-heap of (|A|, -tuple order, A)
    heap: list[tuple[float, tuple[int, ...], np.ndarray]] = [(-reach[:, 0, order].sum(), (), np.ones(len(a)))]
    nodes, exact = 0, True
    while heap:
        neg_bound, prefix, prod = heapq.heappop(heap)
        if len(best) == k and -neg_bound < best[0][0]:
            break  # no partial cross left can beat the k-th best
        nodes += 1
        if nodes > max_nodes:
            exact = False
            break
        start = prefix[-1] + 1 if prefix else 0
        left = order - len(prefix) - 1
        for t in range(start, m_fields - left):
            cross, p = (*prefix, t), prod * beta[:, t]
            if left == 0:
                w = float(p.sum())
                item = (abs(w), tuple(-i for i in cross), w)
                if len(best) < k:
                    heapq.heappush(best, item)
                elif item > best[0]:
                    heapq.heapreplace(best, item)
            else:
                bound = float((np.abs(p) * reach[:, t + 1, left]).sum())
                if len(best) < k or bound >= best[0][0]:
                    heapq.heappush(heap, (-bound, cross, p))
    ranked = sorted(best, reverse=True)
    return [(tuple(-i for i in c), w) for _, c, w in ranked], {"nodes": nodes, "exact": exact}


def full_space_top(weights: np.ndarray, order: int, k: int) -> list[tuple[tuple[int, ...], float]]:
    """Top-k of the full space's free weights (an M^o tensor; increasing tuples only)."""
    m = weights.shape[0]
    scored = [(c, float(weights[c])) for c in itertools.combinations(range(m), order)]
    scored.sort(key=lambda cw: (-abs(cw[1]), cw[0]))
    return scored[:k]


def random_crosses(rng: np.random.Generator, m: int, order: int, k: int) -> list[tuple[int, ...]]:
    """``k`` distinct crosses of ``order`` drawn uniformly (the paper's random baseline)."""
    k = min(k, _n_choose(m, order))
    out: set[tuple[int, ...]] = set()
    while len(out) < k:
        out.add(tuple(sorted(int(i) for i in rng.choice(m, order, replace=False))))
    return sorted(out)


def pair_matrix(beta: np.ndarray) -> np.ndarray:
    """A_ij = sum_r beta_r[i] beta_r[j] for every pair (the report's fields x fields map; the
    diagonal is no cross)."""
    beta = np.asarray(beta, dtype=np.float64)
    return beta.T @ beta


def _n_choose(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)
