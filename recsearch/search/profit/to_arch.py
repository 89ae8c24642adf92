"""The selected crosses as an ordinary architecture spec (``field_cross`` blocks, by name).

One ``field_cross`` block per order over the categorical fields (and, with
``dense_as_fields``, the numeric ones as ``dense_buckets`` fields); the blocks' products
feed the output MLP (the paper's 400-400-400), as in PROFIT's retrained model (Eq. 1-2).
"""

from __future__ import annotations

from typing import Any

from recsearch.models.arch import INPUT_DENSE, INPUT_SPARSE, SCHEMA_VERSION
from recsearch.search.profit.config import ProfitConfig


def arch_from_crosses(
    crosses: dict[int, list[tuple[str, ...]]], config: ProfitConfig, dense_names: list[str], name: str
) -> dict[str, Any]:
    """``crosses[o]``: the kept crosses of order o, as tuples of field names."""
    blocks: list[dict[str, Any]] = []
    sparse = [INPUT_SPARSE]
    if config.dense_as_fields and dense_names:
        blocks.append(
            {
                "name": "dense_fields",
                "op": "dense_buckets",
                "dense": [INPUT_DENSE],
                "args": {"buckets": config.dense_buckets},
            }
        )
        sparse.append("dense_fields")
    for o in sorted(crosses):
        if crosses[o]:
            blocks.append(
                {"name": f"order_{o}", "op": "field_cross", "sparse": list(sparse),
                 "args": {"crosses": [list(c) for c in crosses[o]]}}
            )  # fmt: skip
    inputs = [b["name"] for b in blocks if b["op"] == "field_cross"]
    if not (config.dense_as_fields and dense_names):
        inputs.append(INPUT_DENSE)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "embedding": {"dim": config.emb_dim},
        "blocks": blocks,
        "head": {"inputs": inputs, "hidden": list(config.head_hidden)},
        "meta": {"crosses_per_order": {str(o): len(c) for o, c in crosses.items()}},
    }


def random_arch(config: Any, found: dict[str, Any], info: Any, rng: Any) -> dict[str, Any]:
    """The found architecture with each order's crosses replaced by as many random crosses of
    that order over the same fields (the paper's random-selection control): same FLOPs."""
    import copy

    spec = copy.deepcopy(found)
    spec.pop("tables", None)  # rebuilt from the data for the new sizes
    spec["name"] = "profit_random"
    numeric = info.dense_names if any(b["op"] == "dense_buckets" for b in spec["blocks"]) else []
    pool = info.sparse_names + info.jagged_names + list(numeric)
    for block in spec["blocks"]:
        if block["op"] != "field_cross" or not block["args"]["crosses"]:
            continue
        order, k = len(block["args"]["crosses"][0]), len(block["args"]["crosses"])
        drawn: set[tuple[str, ...]] = set()
        while len(drawn) < k:
            drawn.add(tuple(sorted(rng.choice(pool, size=order, replace=False).tolist())))
        block["args"]["crosses"] = [list(c) for c in sorted(drawn)]
    return spec
