"""Interaction and embedding operators shared by the model zoo and every search space.

A registry of named operators (``list_ops``/``create_op``). Every operator takes
``(dense B x D, sparse B x N x E)``; dense-output ones return ``B x D_out``,
sparse-output ones ``B x N_out x E_out``. ``create_op`` turns input shapes, the
wanted output shape and op-specific arguments into each constructor's explicit
keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from recsearch.ops.cross import DenseBuckets, FieldCross
from recsearch.ops.dense import (
    FM,
    PIN,
    Add,
    CrossNet,
    DenseIdentity,
    DenseLinear,
    DotProduct,
    PairGating,
    PairSum,
    SigmoidGating,
    Sum,
)
from recsearch.ops.sparse import (
    CIN,
    PMA,
    Add3D,
    DenseToFields,
    EmbedFC,
    SparseIdentity,
    SparseLinear,
    Transformer,
)


@dataclass(frozen=True)
class Shapes:
    """Input and output shapes of one operator instance."""

    dense_in: int
    num_fields: int
    emb_dim: int
    dense_out: int = 0
    fields_out: int = 0
    dim_out: int = 0


@dataclass(frozen=True)
class OpSpec:
    name: str
    output: str  # "dense" or "sparse"
    cls: type[nn.Module]
    shape_args: Callable[[Shapes], dict[str, int]]
    allowed_args: frozenset[str] = frozenset()
    reads: str = "both"  # the inputs it uses: "dense", "sparse" or "both"
    field_names: bool = False  # the builder passes the names of its sparse input's fields


def _dense(s: Shapes) -> dict[str, int]:
    return {"dense_in": s.dense_in, "dense_out": s.dense_out}


def _sparse(s: Shapes) -> dict[str, int]:
    return {
        "num_fields": s.num_fields,
        "emb_dim": s.emb_dim,
        "fields_out": s.fields_out,
        "dim_out": s.dim_out,
    }


_REGISTRY: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("identity", "dense", DenseIdentity, _dense, reads="dense"),
        OpSpec("linear", "dense", DenseLinear, _dense, reads="dense"),
        OpSpec(
            "dot_product",
            "dense",
            DotProduct,
            lambda s: {
                "dense_in": s.dense_in,
                "num_fields": s.num_fields,
                "emb_dim": s.emb_dim,
                "dense_out": s.dense_out,
            },
            frozenset({"compress_fields"}),
        ),
        OpSpec("crossnet", "dense", CrossNet, _dense, frozenset({"num_layers", "low_rank"}), reads="dense"),
        OpSpec("pin", "dense", PIN, _dense, frozenset({"num_layers"}), reads="dense"),
        OpSpec("sigmoid_gating", "dense", SigmoidGating, _dense, reads="dense"),
        OpSpec(
            "sum",
            "dense",
            Sum,
            lambda s: {"dense_in": s.dense_in, "emb_dim": s.emb_dim, "dense_out": s.dense_out},
        ),
        OpSpec(
            "fm",
            "dense",
            FM,
            lambda s: {"emb_dim": s.emb_dim, "dense_out": s.dense_out},
            frozenset({"reduce"}),
        ),
        OpSpec("add", "dense", Add, _dense, frozenset({"parts", "layer_norm", "part_norm"})),
        OpSpec("pair_sum", "dense", PairSum, _dense, frozenset({"left_width"}), reads="dense"),
        OpSpec("pair_gating", "dense", PairGating, _dense, frozenset({"left_width"}), reads="dense"),
        OpSpec(
            "dense_to_fields",
            "sparse",
            DenseToFields,
            lambda s: {"dense_in": s.dense_in, "fields_out": s.fields_out, "dim_out": s.dim_out},
            reads="dense",
        ),
        OpSpec("identity3d", "sparse", SparseIdentity, _sparse, reads="sparse"),
        OpSpec("add3d", "sparse", Add3D, _sparse, frozenset({"parts", "layer_norm", "part_norm"})),
        OpSpec("linear3d", "sparse", SparseLinear, _sparse, reads="sparse"),
        OpSpec("embed_fc", "sparse", EmbedFC, _sparse, reads="sparse"),
        OpSpec(
            "transformer", "sparse", Transformer, _sparse, frozenset({"num_heads", "ffn_dim"}), reads="sparse"
        ),
        OpSpec("pma", "sparse", PMA, _sparse, frozenset({"num_heads"}), reads="sparse"),
        OpSpec("cin", "sparse", CIN, _sparse, frozenset({"layer_sizes"})),
        OpSpec(
            "field_cross",
            "sparse",
            FieldCross,
            lambda s: {"num_fields": s.num_fields, "emb_dim": s.emb_dim},
            frozenset({"crosses"}),
            reads="sparse",
            field_names=True,
        ),
        OpSpec(
            "dense_buckets",
            "sparse",
            DenseBuckets,
            lambda s: {"dense_in": s.dense_in, "dim_out": s.dim_out},
            frozenset({"buckets"}),
            reads="dense",
        ),
    ]
}


def list_ops(output: str | None = None) -> list[str]:
    """Names of the registered operators, optionally only ``dense`` or ``sparse`` ones."""
    return sorted(n for n, s in _REGISTRY.items() if output is None or s.output == output)


def op_spec(name: str) -> OpSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(list_ops())}")
    return _REGISTRY[name]


def create_op(
    name: str, shapes: Shapes, args: dict[str, Any] | None = None, field_names: list[str] | None = None
) -> nn.Module:
    """Build operator ``name`` for ``shapes`` with op-specific ``args`` (and, for ops that select
    fields by name, the names of the input's fields)."""
    spec = op_spec(name)
    args = dict(args or {})
    unknown = sorted(set(args) - spec.allowed_args)
    if unknown:
        allowed = ", ".join(sorted(spec.allowed_args)) or "none"
        raise ValueError(f"op {name!r} does not take argument(s) {unknown}; it takes: {allowed}")
    if "layer_sizes" in args:
        args["layer_sizes"] = tuple(args["layer_sizes"])
    if spec.field_names:
        if field_names is None:
            raise ValueError(f"op {name!r} selects fields by name: it needs the input's field names")
        args["field_names"] = list(field_names)
    return spec.cls(**spec.shape_args(shapes), **args)
