"""Build a model from an architecture spec: TorchRec embeddings + an FX-built block graph."""

import copy
from typing import Any

import torch
from torch import fx, nn
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.arch import INPUT_DENSE, INPUT_SPARSE, ArchError, validate
from recsearch.models.blocked import BlockedEmbeddings, block_rows
from recsearch.models.tables import sum_table
from recsearch.ops import Shapes, create_op, op_spec

_NATURAL_DENSE_OUT = {"identity", "crossnet", "pin", "sigmoid_gating"}


class PooledEmbeddings(nn.Module):
    """EmbeddingBagCollection -> (B, N, E): one pooled vector per feature at a common width.

    Tables may have their own dims (mixed-dimension embeddings); a table whose dim
    differs from ``common_dim`` is projected by its own linear layer.

    Args:
        ebc: the embedding tables, one feature each.
        feature_names: features in output order.
        dims: each feature's table dim.
        common_dim: E of the output.
    """

    def __init__(
        self, *, ebc: EmbeddingBagCollection, feature_names: list[str], dims: list[int], common_dim: int
    ) -> None:
        super().__init__()
        self.ebc = ebc
        self.feature_names = feature_names
        self.dims = dims
        self.uniform = all(d == common_dim for d in dims)
        self.common_dim = common_dim
        self.projs = nn.ModuleList(
            [nn.Identity() if d == common_dim else nn.Linear(d, common_dim) for d in dims]
        )

    def forward(self, sparse: KeyedJaggedTensor) -> torch.Tensor:
        # by name: a sharded collection may return its features in another order (by rank)
        pooled = self.ebc(sparse).to_dict()
        values = torch.cat([pooled[f] for f in self.feature_names], dim=1)
        if self.uniform:
            return values.view(values.shape[0], len(self.feature_names), self.common_dim)
        chunks = torch.split(values, self.dims, dim=1)
        out = [proj(chunks[i]) for i, proj in enumerate(self.projs)]
        return torch.stack(out, dim=1)


def per_feature_embeddings(
    feature_names: list[str], num_embeddings: list[int], dims: int | list[int], common_dim: int | None = None
) -> PooledEmbeddings:
    """One TorchRec table per feature (``t_<feature>``, sum pooling) at ``dims`` (one for all, or
    one per feature), pooled to (B, N, ``common_dim``; default the one dim)."""
    widths = [dims] * len(feature_names) if isinstance(dims, int) else list(dims)
    ebc = EmbeddingBagCollection(
        tables=[sum_table(f, n, d) for f, n, d in zip(feature_names, num_embeddings, widths, strict=True)]
    )
    common = common_dim if common_dim is not None else widths[0]
    return PooledEmbeddings(ebc=ebc, feature_names=list(feature_names), dims=widths, common_dim=common)


class ArchModel(nn.Module):
    """A CTR model built from an architecture spec; ``forward`` returns logits (B,).

    Args:
        embeddings: pooled embeddings module (sparse KJT -> B x N x E).
        interaction: the block graph (dense B x D, sparse B x N x E) -> logits.
        spec: the validated architecture spec (with ``tables`` filled in).
    """

    def __init__(
        self,
        *,
        embeddings: PooledEmbeddings | BlockedEmbeddings,
        interaction: fx.GraphModule,
        spec: dict[str, Any],
    ) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.interaction = interaction
        self.spec = spec

    def forward(self, dense: torch.Tensor, sparse: KeyedJaggedTensor) -> torch.Tensor:
        return self.interaction(dense, self.embeddings(sparse))


def mlp(in_dim: int, hidden: list[int]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    return nn.Sequential(*layers), in_dim


def _dense_out(block: dict[str, Any], shapes: Shapes) -> int:
    if "dense_out" in block:
        return int(block["dense_out"])
    op = block["op"]
    if op in _NATURAL_DENSE_OUT:
        return shapes.dense_in
    if op == "dot_product":
        n = int(block["args"].get("compress_fields") or shapes.num_fields) + 1
        return n * (n - 1) // 2
    if op == "fm":
        return 1 if block["args"].get("reduce") else shapes.emb_dim
    raise ArchError(f"block {block['name']!r}: op {op!r} needs an explicit 'dense_out'")


def _fields_out(block: dict[str, Any], fields: int, dense_in: int) -> int:
    if "fields_out" in block:
        return int(block["fields_out"])
    if block["op"] == "dense_buckets":  # one field per numeric feature
        return dense_in
    if block["op"] == "field_cross":  # one field per cross
        return len(block["args"]["crosses"])
    return fields


def build_interaction(
    spec: dict[str, Any],
    num_dense: int,
    num_fields: int,
    emb_dim: int,
    field_names: list[str] | None = None,
    dense_names: list[str] | None = None,
) -> fx.GraphModule:
    """Build the block graph of a validated spec as an FX GraphModule.

    ``field_names`` (the sparse features) and ``dense_names`` name the fields that ops
    selecting fields by name (``field_cross``) refer to; ``dense_buckets`` fields carry
    the numeric features' names, other blocks' fields ``<block>.<i>``.
    """
    root = nn.Module()
    g = fx.Graph()
    dense_in = g.placeholder("dense")
    sparse_in = g.placeholder("sparse")
    # name -> (kind, node, width) where width is D for dense and (N, E) for sparse
    env: dict[str, tuple[str, fx.Node, Any]] = {
        INPUT_DENSE: ("dense", dense_in, num_dense),
        INPUT_SPARSE: ("sparse", sparse_in, (num_fields, emb_dim)),
    }
    names: dict[str, list[str] | None] = {INPUT_SPARSE: list(field_names) if field_names else None}
    numeric = list(dense_names) if dense_names else None

    def names_of(owner: str, refs: list[str]) -> list[str]:
        """The field names of a block's sparse input (a dense input merged to a field: its ref)."""
        out: list[str] = []
        for ref in refs:
            if env[ref][0] == "dense":
                out.append(ref)
                continue
            known = names.get(ref)
            if known is None:
                raise ArchError(
                    f"block {owner!r} selects fields by name, but the names of {ref!r} are unknown "
                    "here; build it with the data's feature names"
                )
            out.extend(known)
        return out

    def as_dense(refs: list[str]) -> tuple[fx.Node | None, int]:
        parts, width = [], 0
        for ref in refs:
            kind, node, w = env[ref]
            if kind == "sparse":
                node = g.call_method("flatten", (node, 1))
                w = w[0] * w[1]
            parts.append(node)
            width += w
        if not parts:
            return None, 0
        return (parts[0] if len(parts) == 1 else g.call_function(torch.cat, (parts, 1))), width

    def as_sparse(owner: str, refs: list[str]) -> tuple[fx.Node | None, tuple[int, int]]:
        parts: list[fx.Node] = []
        fields, dim = 0, None
        for ref in refs:
            kind, node, w = env[ref]
            if kind == "dense":
                merger = f"{owner}_to_sparse_{len(parts)}"
                root.add_module(merger, nn.Linear(w, emb_dim))
                node = g.call_method("unsqueeze", (g.call_module(merger, (node,)), 1))
                w = (1, emb_dim)
            if dim is not None and w[1] != dim:
                raise ArchError(f"block {owner!r}: sparse inputs have different widths ({dim} and {w[1]})")
            dim = w[1]
            parts.append(node)
            fields += w[0]
        if not parts:
            return None, (0, emb_dim)
        node = parts[0] if len(parts) == 1 else g.call_function(torch.cat, (parts, 1))
        return node, (fields, dim or emb_dim)

    for block in spec["blocks"]:
        name = block["name"]
        d_node, d_width = as_dense(block["dense"])
        s_node, (fields, dim) = as_sparse(name, block["sparse"])
        if d_node is None:  # a zero-width dense input keeps every op's signature uniform
            d_node = g.call_method("new_zeros", (dense_in, (g.call_method("size", (dense_in, 0)), 0)))
        if s_node is None:
            s_node = g.call_method(
                "new_zeros", (dense_in, (g.call_method("size", (dense_in, 0)), 1, emb_dim))
            )
            fields, dim = 1, emb_dim
        shapes = Shapes(dense_in=d_width, num_fields=fields, emb_dim=dim)
        if op_spec(block["op"]).output == "dense":
            shapes = Shapes(d_width, fields, dim, dense_out=_dense_out(block, shapes))
            out_width: Any = shapes.dense_out
        else:
            shapes = Shapes(
                d_width,
                fields,
                dim,
                fields_out=_fields_out(block, fields, d_width),
                dim_out=int(block.get("dim_out", dim)),
            )
            out_width = (shapes.fields_out, shapes.dim_out)
            if block["op"] == "dense_buckets":
                names[name] = numeric if numeric and len(numeric) == d_width else None
            else:
                names[name] = [f"{name}.{i}" for i in range(shapes.fields_out)]
        selected = names_of(name, block["sparse"]) if op_spec(block["op"]).field_names else None
        try:
            root.add_module(name, create_op(block["op"], shapes, block["args"], selected))
        except (ValueError, TypeError) as e:
            raise ArchError(f"block {name!r}: {e}") from None
        env[name] = (op_spec(block["op"]).output, g.call_module(name, (d_node, s_node)), out_width)

    head = spec["head"]
    h_node, h_width = as_dense(head["inputs"])
    mlp_, width = mlp(h_width, head["hidden"])
    root.add_module("head_mlp", mlp_)
    root.add_module("head_out", nn.Linear(width, 1))
    assert h_node is not None
    logit = g.call_module("head_out", (g.call_module("head_mlp", (h_node,)),))
    if head["linear_inputs"]:
        l_node, l_width = as_dense(head["linear_inputs"])
        root.add_module("head_linear", nn.Linear(l_width, 1, bias=False))
        logit = g.call_function(torch.add, (logit, g.call_module("head_linear", (l_node,))))
    g.output(g.call_method("squeeze", (logit, -1)))
    return fx.GraphModule(root, g, class_name="Interaction")


def build_model(
    spec: dict[str, Any],
    feature_names: list[str],
    num_embeddings: list[int],
    num_dense: int,
    dense_names: list[str] | None = None,
) -> ArchModel:
    """Build a model for data with these sparse features (and table sizes) and dense width.

    ``spec["tables"]``, when present (a saved model's spec), must match the data.
    ``dense_names``: the numeric features' names, for archs that select them by name.
    """
    spec = validate(spec)
    emb = spec["embedding"]
    common = int(emb["dim"])
    overrides = {k: int(v) for k, v in emb.get("dims", {}).items()}
    blocks = emb.get("blocks", {})
    unknown = sorted((set(overrides) | set(blocks)) - set(feature_names))
    if unknown:
        raise ArchError(f"arch.embedding names unknown feature(s) {unknown}")
    tables: list[dict[str, Any]] = [
        {"feature": f, "num_embeddings": int(n), "dim": overrides.get(f, common)}
        for f, n in zip(feature_names, num_embeddings, strict=True)
    ]
    for t in tables:
        if t["feature"] in blocks:
            b = blocks[t["feature"]]
            if b["starts"][-1] >= t["num_embeddings"]:
                raise ArchError(
                    f"arch.embedding.blocks.{t['feature']}: a block starts at id {b['starts'][-1]}, "
                    f"beyond the table's {t['num_embeddings']} rows; search again on this data"
                )
            rows = block_rows(b["starts"], t["num_embeddings"])
            t["dim"] = max(b["dims"])
            t["blocks"] = [
                {"first_id": s, "rows": r, "dim": d}
                for s, r, d in zip(b["starts"], rows, b["dims"], strict=True)
            ]
    used = {t["dim"] for t in tables if "blocks" not in t} | {
        b["dim"] for t in tables for b in t.get("blocks", []) if b["dim"]
    }
    bad = sorted(d for d in used if d < 4 or d % 4)
    if bad:
        raise ArchError(f"embedding dims {bad} are not allowed: FBGEMM's kernels need multiples of 4")
    if "tables" in spec and spec["tables"] != tables:
        raise ArchError("arch.tables do not match the data's features and table sizes; rebuild from the data")
    spec["tables"] = tables
    embeddings: PooledEmbeddings | BlockedEmbeddings
    if blocks:
        embeddings = BlockedEmbeddings(
            feature_names=list(feature_names),
            num_embeddings=[int(t["num_embeddings"]) for t in tables],
            starts=[[b["first_id"] for b in t["blocks"]] if "blocks" in t else [0] for t in tables],
            dims=[[b["dim"] for b in t["blocks"]] if "blocks" in t else [t["dim"]] for t in tables],
            common_dim=common,
        )
    else:
        embeddings = per_feature_embeddings(
            list(feature_names),
            [int(t["num_embeddings"]) for t in tables],
            [int(t["dim"]) for t in tables],
            common,
        )
    interaction = build_interaction(spec, num_dense, len(feature_names), common, feature_names, dense_names)
    return ArchModel(embeddings=embeddings, interaction=interaction, spec=copy.deepcopy(spec))
