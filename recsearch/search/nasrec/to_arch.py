"""A NASRec subnet -> the architecture JSON: an ordinary model of only the chosen ops and widths.

Each block becomes blocks of the shared op library (so the model trains, profiles and
exports like any zoo model, and its FLOPs are the subnet's, not the supernet's):

* FC -> ``linear``; DotProduct -> ``dot_product`` compressing the fields to
  round(sqrt(2 d)) first; Sum / Gating -> ``pair_sum`` / ``pair_gating`` of the left and
  right sources; with the FM merger, an ``fm`` term of the sparse input is added (``add``);
* EmbedFC -> ``embed_fc``; Attention -> ``embed_fc`` to the chosen fields, then
  ``transformer``; Project-Concat -> ``dense_to_fields`` of the block's dense output,
  read along with its sparse output by later blocks;
* the head is one linear layer over the last block's outputs.

With ``space.standalone_norm`` (the default) each block's dense and sparse outputs are
layer-normalized as in the supernet (``add`` / ``add3d`` with one part). The paper inserts
LayerNorm "during supernet training" and the released code trains stand-alone models
without it; here, retrained without it, two top subnets of the small search lost 0.006 and
0.023 logloss on the validation day and varied far more from subnet to subnet
(docs/results.md), so the default keeps it.
"""

from __future__ import annotations

from typing import Any

from recsearch.models.arch import INPUT_DENSE, INPUT_SPARSE, SCHEMA_VERSION, validate
from recsearch.search.nasrec.config import NASRecSpace
from recsearch.search.nasrec.space import Genotype, canonical, check, encode, live_blocks
from recsearch.search.nasrec.supernet import dot_tokens


def arch_from_genotype(
    genotype: Genotype,
    space: NASRecSpace,
    num_dense: int,
    name: str = "nasrec",
    meta: dict[str, Any] | None = None,
    norm: bool | None = None,
) -> dict[str, Any]:
    """The architecture spec of a subnet (``num_dense``: the data's dense width, which the
    binary ops need to split their two inputs)."""
    check(genotype, space)
    norm = space.standalone_norm if norm is None else norm
    live = live_blocks(genotype)
    e = space.emb_dim
    dense_ref = {0: INPUT_DENSE}
    dense_width = {0: num_dense}
    sparse_refs: dict[int, list[str]] = {0: [INPUT_SPARSE]}
    blocks: list[dict[str, Any]] = []
    for i, b in enumerate(genotype, start=1):
        if i not in live:
            continue  # its outputs never reach the logit
        d, n = b.dense_dim, b.sparse_fields
        sparse_in = [ref for j in b.sparse_in for ref in sparse_refs[j]]
        op = b.dense_ops[0]
        dense_in = [dense_ref[j] for j in b.dense_in] if op in ("fc", "dot") else []  # else unread
        dense_out = f"b{i}_dense_raw" if norm else f"b{i}_dense"
        out = f"b{i}_{op}" if b.fm else dense_out
        if op == "fc":
            blocks.append({"name": out, "op": "linear", "dense": dense_in, "dense_out": d})
        elif op == "dot":
            blocks.append(
                {"name": out, "op": "dot_product", "dense": dense_in, "sparse": sparse_in, "dense_out": d}
                | {"args": {"compress_fields": dot_tokens(d)}}
            )
        else:
            left, right = b.left[0], b.right[0]
            blocks.append(
                {"name": out, "op": "pair_sum" if op == "sum" else "pair_gating", "dense_out": d}
                | {"dense": [dense_ref[left], dense_ref[right]], "args": {"left_width": dense_width[left]}}
            )
        if b.fm:
            blocks.append({"name": f"b{i}_fm", "op": "fm", "sparse": sparse_in, "dense_out": d})
            blocks.append(
                {"name": dense_out, "op": "add", "dense": [out, f"b{i}_fm"], "dense_out": d}
                | {"args": {"parts": 2}}
            )
        shape = {"fields_out": n, "dim_out": e}
        sparse_out = f"b{i}_sparse_raw" if norm else f"b{i}_sparse"
        if b.sparse_ops[0] == "embed_fc":
            blocks.append({"name": sparse_out, "op": "embed_fc", "sparse": sparse_in, **shape})
        else:
            blocks.append({"name": f"b{i}_attn_in", "op": "embed_fc", "sparse": sparse_in, **shape})
            blocks.append(
                {"name": sparse_out, "op": "transformer", "sparse": [f"b{i}_attn_in"], **shape}
                | {"args": {"num_heads": space.num_heads, "ffn_dim": space.ffn_dim}}
            )
        if norm:  # the supernet's per-op LayerNorm, kept in the stand-alone model
            blocks.append(
                {"name": f"b{i}_dense", "op": "add", "dense": [f"b{i}_dense_raw"], "dense_out": d}
                | {"args": {"parts": 1, "layer_norm": True}}
            )
            blocks.append(
                {"name": f"b{i}_sparse", "op": "add3d", "sparse": [sparse_out], **shape}
                | {"args": {"parts": 1, "layer_norm": True}}
            )
        sparse_refs[i] = [f"b{i}_sparse"]
        if b.project_concat:
            blocks.append(
                {"name": f"b{i}_pc", "op": "dense_to_fields", "dense": [f"b{i}_dense"]}
                | {"fields_out": space.project_fields, "dim_out": e}
            )
            sparse_refs[i].append(f"b{i}_pc")
        dense_ref[i], dense_width[i] = f"b{i}_dense", d
    last = len(genotype)
    spec = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "embedding": {"dim": e},
        "blocks": blocks,
        "head": {"inputs": [dense_ref[last], *sparse_refs[last]], "hidden": []},
        "meta": {
            "method": "nasrec",
            "search_space": space.to_dict(),
            "genotype": [blk.to_dict() for blk in genotype],
            "genotype_key": encode(canonical(genotype, space)),
            "num_dense": num_dense,
            **(meta or {}),
        },
    }
    return validate(spec)


def random_arch(config: Any, found: dict[str, Any], info: Any, rng: Any) -> dict[str, Any]:
    """A random subnet of the space (the evolution's initial draws) at about the found one's
    FLOPs: the comparison's control."""
    from recsearch.search.common import similar_flops
    from recsearch.search.nasrec.space import sample

    space = config.space

    def draw() -> dict[str, Any]:
        return arch_from_genotype(sample(rng, space), space, len(info.dense_names), name="nasrec_random")

    return similar_flops(draw, found, info, space.emb_dim)
