"""Explicit feature crosses: named field products and numeric features as embedded fields.

PROFIT (Gao et al., "Progressive Feature Interaction Search for Deep Sparse Network",
NeurIPS 2021), Eq. 1: an order-o layer is the set {f_c1 * ... * f_co : c in C_o} of
element-wise products of chosen fields' embeddings. ``FieldCross`` is that layer for an
explicit list of crosses, so a searched model is an ordinary architecture spec.
"""

from __future__ import annotations

import torch
from torch import nn


class FieldCross(nn.Module):
    """The element-wise products of listed field tuples: sparse (B, N, E) -> (B, C, E).

    Args:
        num_fields: N, fields of the sparse input.
        emb_dim: E.
        field_names: the names of the N input fields, in order (the builder passes them).
        crosses: C tuples of field names, all of one order o (1 = the fields themselves).

    Example:
        >>> op = FieldCross(num_fields=3, emb_dim=2, field_names=["a", "b", "c"], crosses=[["a", "c"]])
        >>> op(torch.zeros(1, 0), torch.tensor([[[1.0, 2.0], [5.0, 5.0], [3.0, 4.0]]]))
        tensor([[[3., 8.]]])
    """

    def __init__(
        self, *, num_fields: int, emb_dim: int, field_names: list[str], crosses: list[list[str]]
    ) -> None:
        super().__init__()
        if len(field_names) != num_fields:
            raise ValueError(f"field_cross: {len(field_names)} field names for {num_fields} input fields")
        if not crosses:
            raise ValueError("field_cross needs at least one cross")
        orders = {len(c) for c in crosses}
        if len(orders) != 1:
            raise ValueError(f"field_cross: crosses of one order per block, got orders {sorted(orders)}")
        position = {n: i for i, n in enumerate(field_names)}
        unknown = sorted({f for c in crosses for f in c} - set(position))
        if unknown:
            raise ValueError(f"field_cross: unknown field(s) {unknown}; the input's fields: {field_names}")
        if any(len(set(c)) != len(c) for c in crosses):
            raise ValueError("field_cross: a cross names a field twice")
        self.order = orders.pop()
        self.emb_dim = emb_dim
        self.index: torch.Tensor
        self.register_buffer(
            "index", torch.tensor([[position[f] for f in c] for c in crosses], dtype=torch.long)
        )

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        out = sparse.index_select(1, self.index[:, 0])
        for k in range(1, self.order):
            out = out * sparse.index_select(1, self.index[:, k])
        return out


class DenseBuckets(nn.Module):
    """Numeric features as embedded fields: dense (B, D) -> (B, D, E).

    Each value v (the shards hold log1p of the raw integer) falls into bucket
    floor(v^2), capped at ``buckets - 1``: the floor(log(x)^2) discretization of
    Criteo's integer features that PROFIT, AutoInt and AFN use to embed them as fields.
    The table is D x buckets x E (13 x 64 x 16 = 13k values for Criteo): a dense
    parameter that every rank holds, as TorchRec's planner would place a table this small.

    Args:
        dense_in: D, numeric features.
        dim_out: E.
        buckets: buckets per feature.

    Example:
        >>> op = DenseBuckets(dense_in=2, dim_out=4, buckets=8)
        >>> op(torch.tensor([[0.0, 1.5]]), torch.zeros(1, 1, 4)).shape
        torch.Size([1, 2, 4])
    """

    def __init__(self, *, dense_in: int, dim_out: int, buckets: int = 64) -> None:
        super().__init__()
        self.buckets = buckets
        self.table = nn.Embedding(dense_in * buckets, dim_out)
        nn.init.normal_(self.table.weight, std=0.05)
        self.offsets: torch.Tensor
        self.register_buffer("offsets", torch.arange(dense_in, dtype=torch.long) * buckets)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        v = dense.clamp(min=0.0)
        ids = torch.clamp(torch.floor(v * v), max=float(self.buckets - 1)).long()
        return self.table(ids + self.offsets)
