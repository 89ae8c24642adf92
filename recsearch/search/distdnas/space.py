"""The DistDNAS search space: N choice blocks, their wiring, and architectures in it.

Block i (1..N) takes as dense input the dense outputs of blocks i-1 and i-2 plus the
flattened sparse output of block i-1 (the sparse-to-dense merger), and as sparse
input the sparse output of block i-1 plus each dense input mapped to one field (the
dense-to-sparse merger). Block 0 is the data: dense features and pooled embeddings.
Every block mixes ``DENSE_OPS`` into a dense output of ``dense_dim`` and
``SPARSE_OPS`` into a sparse output of ``sparse_fields`` x ``emb_dim``; the head MLP
reads block N's dense and flattened sparse outputs.

A discrete architecture keeps, per block, a non-empty subset of the dense ops and of
the sparse ops; each kept op becomes one block of the architecture JSON, and where a
choice block keeps several ops of a kind an ``add`` (``add3d``) block sums their
outputs, as the supernet does (weights dropped), so widths match the supernet's; with
``block_norm`` it also layer-normalizes them, as the supernet does after mixing, and with
``op_norm`` it normalizes each op's output first. With ``shared_merger`` each block maps
each dense input to a sparse field once (``dense_to_fields`` blocks, as the supernet's
one merger per block) and ops get only the inputs they read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsearch.models.arch import INPUT_DENSE, INPUT_SPARSE, SCHEMA_VERSION, validate
from recsearch.ops import op_spec
from recsearch.search.distdnas.config import SpaceConfig

DENSE_OPS = ["identity", "linear", "dot_product", "crossnet", "pin"]
SPARSE_OPS = ["identity3d", "linear3d", "transformer", "embed_fc", "pma"]
# shorter names for plots and tables
OP_LABELS = {
    "identity": "Identity",
    "linear": "Linear",
    "dot_product": "DotProduct",
    "crossnet": "CrossNet",
    "pin": "PIN",
    "identity3d": "Identity3D",
    "linear3d": "Linear3D",
    "transformer": "Transformer",
    "embed_fc": "EmbedFC",
    "pma": "PMA",
}


def op_args(op: str, space: SpaceConfig, block: int = 2) -> dict[str, Any]:
    """Op-specific arguments of ``op`` in choice block ``block`` (1..N) of this space (the
    supernet and discrete archs alike)."""
    if op == "dot_product" and space.dot_compress_fields:
        return {"compress_fields": space.dot_compress_fields}
    cross = (
        space.first_crossnet_layers if block == 1 and space.first_crossnet_layers else space.crossnet_layers
    )
    if op == "crossnet":
        return {"num_layers": cross}
    if op == "pin":
        return {"num_layers": space.pin_layers or cross}
    return {}


def _block_name(i: int, op: str) -> str:
    return f"b{i}_{op}"


def arch_from_choice(
    choice: list[tuple[list[str], list[str]]],
    space: SpaceConfig,
    name: str = "distdnas",
    stack: int = 1,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The architecture JSON of one discrete choice: per block (dense ops, sparse ops) kept.

    With ``stack`` M > 1 the chain of blocks is repeated M times in parallel (own
    weights each) and the head reads all M final outputs, as the paper's stacking.
    """
    if len(choice) != space.num_blocks:
        raise ValueError(f"a choice needs {space.num_blocks} blocks, got {len(choice)}")
    if stack < 1:
        raise ValueError(f"stack must be >= 1, got {stack}")
    blocks: list[dict[str, Any]] = []
    head_inputs: list[str] = []
    for m in range(stack):
        prefix = f"s{m}_" if stack > 1 else ""
        dense_outs: list[list[str]] = [[INPUT_DENSE]]  # per block; block 0 = data
        sparse_outs: list[list[str]] = [[INPUT_SPARSE]]
        for i, (dense_ops, sparse_ops) in enumerate(choice, start=1):
            if not dense_ops or not sparse_ops:
                raise ValueError(f"block {i} keeps no dense or no sparse op; each block needs both")
            dense_in = dense_outs[i - 1] + (dense_outs[i - 2] if i >= 2 else [])
            refs_dense = dense_in + sparse_outs[i - 1]  # sparse refs flatten: sparse-to-dense merger
            refs_sparse = sparse_outs[i - 1] + dense_in  # dense refs -> one field each, per op
            if space.shared_merger:  # one dense-to-sparse merger per dense input (every sparse op reads it)
                mergers = []
                if any(op_spec(op).reads != "dense" for op in [*dense_ops, *sparse_ops]):
                    for j, ref in enumerate(dense_in):
                        mergers.append(f"{prefix}b{i}_to_field{j}")
                        blocks.append(
                            {"name": mergers[-1], "op": "dense_to_fields", "dense": [ref], "sparse": []}
                            | {"fields_out": 1, "dim_out": space.emb_dim, "args": {}}
                        )
                refs_sparse = sparse_outs[i - 1] + mergers
            kept = []  # per kind: the names of this block's outputs
            for kind, ops, allowed, out, merge in (
                ("dense", dense_ops, DENSE_OPS, {"dense_out": space.dense_dim}, "add"),
                (
                    "sparse",
                    sparse_ops,
                    SPARSE_OPS,
                    {"fields_out": space.sparse_fields, "dim_out": space.emb_dim},
                    "add3d",
                ),
            ):
                names = []
                for op in ops:
                    if op not in allowed:
                        raise ValueError(f"block {i}: {op!r} is not a {kind} op of this space {allowed}")
                    names.append(prefix + _block_name(i, op))
                    reads = op_spec(op).reads if space.shared_merger else "both"
                    blocks.append(
                        {"name": names[-1], "op": op, **out, "args": op_args(op, space, i)}
                        | {"dense": refs_dense if reads != "sparse" else []}
                        | {"sparse": refs_sparse if reads != "dense" else []}
                    )
                if len(names) > 1 or space.block_norm or space.op_norm:  # as the supernet mixes
                    args: dict[str, Any] = {"parts": len(names)}
                    if space.block_norm:
                        args["layer_norm"] = True
                    if space.op_norm:
                        args["part_norm"] = True
                    blocks.append(
                        {"name": f"{prefix}b{i}_{kind}", "op": merge, kind: names, **out, "args": args}
                    )
                    names = [blocks[-1]["name"]]
                kept.append(names)
            d_names, s_names = kept
            dense_outs.append(d_names)
            sparse_outs.append(s_names)
        head_inputs += dense_outs[-1] + sparse_outs[-1]
    spec = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "embedding": {"dim": space.emb_dim},
        "blocks": blocks,
        "head": {"inputs": head_inputs, "hidden": list(space.head_hidden)},
        "meta": {
            "search_space": space.to_dict(),
            "choice": [[list(d), list(s)] for d, s in choice],
            "stack": stack,
            **(meta or {}),
        },
    }
    return validate(spec)


def sample_choice(rng: np.random.Generator, space: SpaceConfig) -> list[tuple[list[str], list[str]]]:
    """A random discrete choice: each op kept with probability 1/2, at least one per kind."""

    def subset(ops: list[str]) -> list[str]:
        keep = [op for op in ops if rng.random() < 0.5]
        return keep or [ops[int(rng.integers(len(ops)))]]

    return [(subset(DENSE_OPS), subset(SPARSE_OPS)) for _ in range(space.num_blocks)]
