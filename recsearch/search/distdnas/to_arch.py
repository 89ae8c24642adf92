"""Threshold discretization: aggregated DistDNAS weights -> the architecture JSON.

In each block keep every dense op and every sparse op whose aggregated weight is at
least ``threshold`` (paper: 1/|ops| = 0.2, or 0.25 to prune more); where none
reaches it the block keeps its strongest op of that kind. Optionally stack the
discovered chain M times in parallel (the paper's M = 2..4).
"""

from __future__ import annotations

from typing import Any

from recsearch.search.distdnas.config import SpaceConfig
from recsearch.search.distdnas.space import arch_from_choice
from recsearch.utils.config import build_config
from recsearch.utils.fileio import read_json


def choose(agg: dict[str, Any], threshold: float) -> list[tuple[list[str], list[str]]]:
    """Per block, the (dense ops, sparse ops) kept at ``threshold``.

    Example:
        >>> agg = {"dense_ops": ["a", "b"], "sparse_ops": ["c", "d"],
        ...        "dense_weights": [[0.7, 0.3]], "sparse_weights": [[0.45, 0.55]]}
        >>> choose(agg, 0.5)
        [(['a'], ['d'])]
        >>> choose(agg, 0.25)
        [(['a', 'b'], ['c', 'd'])]
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")

    def keep(ops: list[str], weights: list[float]) -> list[str]:
        kept = [op for op, w in zip(ops, weights, strict=True) if w >= threshold]
        return kept or [ops[max(range(len(ops)), key=lambda j: weights[j])]]

    return [
        (keep(agg["dense_ops"], d), keep(agg["sparse_ops"], s))
        for d, s in zip(agg["dense_weights"], agg["sparse_weights"], strict=True)
    ]


def arch_from_aggregate(
    agg: dict[str, Any], threshold: float = 0.2, stack: int = 1, name: str = "", source: str = ""
) -> dict[str, Any]:
    """The architecture spec of aggregated weights at ``threshold``."""
    try:
        space = build_config(SpaceConfig, agg["space"])
        choice = choose(agg, threshold)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{source or 'aggregate'} is not a DistDNAS aggregate ({e})") from None
    return arch_from_choice(
        choice,
        space,
        name=name or f"distdnas_{agg['mode'].replace('-', '_')}",
        stack=stack,
        meta={"search": source, "threshold": threshold, "mode": agg["mode"], "days": agg["days"]},
    )


def discretize(search_dir: str, threshold: float = 0.2, stack: int = 1, name: str = "") -> dict[str, Any]:
    """The architecture spec discovered by the search in ``search_dir``."""
    path = f"{search_dir}/aggregate.json"
    try:
        agg = read_json(path)
    except FileNotFoundError:
        raise ValueError(
            f"{path} not found: run `recsearch search distdnas --out {search_dir}` first"
        ) from None
    except ValueError:
        raise ValueError(f"{path} is damaged (not JSON); rerun the search to rewrite it") from None
    return arch_from_aggregate(agg, threshold, stack, name, search_dir)


def random_arch(config: Any, found: dict[str, Any], info: Any, rng: Any) -> dict[str, Any]:
    """A random architecture of the space (each block keeps a random subset of ops, as the cost
    model samples them) at about the found one's FLOPs: the comparison's control."""
    from recsearch.search.common import similar_flops
    from recsearch.search.distdnas.space import sample_choice

    space = config.space

    def sample() -> dict[str, Any]:
        return arch_from_choice(sample_choice(rng, space), space, name="distdnas_random", stack=config.stack)

    return similar_flops(sample, found, info, space.emb_dim)
