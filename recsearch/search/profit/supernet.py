"""The PROFIT search network: every cross of every order, weighted by low-rank CP weights.

Fields are the categorical features' TorchRec tables (dim d) and, with
``dense_as_fields``, the numeric features as bucketed embeddings (``DenseBuckets``);
each field is batch-normalized without affine (``field_norm``: per field or per
coordinate) so a cross's weight, not its embeddings' scale, carries its importance. Order o
contributes one d-vector, sum_c A_c prod_k f_ck (``cp.cp_cross_sum``; ``full_cross_sum`` in
the full space), and the O vectors feed the output MLP. Orders above ``active_order`` contribute zeros: the
progressive search adds one order at a time.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import mlp, per_feature_embeddings
from recsearch.ops.cross import DenseBuckets
from recsearch.search.profit.config import ProfitConfig
from recsearch.search.profit.cp import cp_cross_sum, full_cross_sum


def _init_scale(m: int, order: int, rank: int) -> float:
    """The beta value that makes an order's output about unit scale at the start: its
    sum has C(M, o) crosses of unit-variance products, R components each."""
    return float((1.0 / (rank * math.sqrt(math.comb(m, order)))) ** (1.0 / order))


class ProfitSupernet(nn.Module):
    """Embeddings + the weighted sum of every cross per order + MLP head; logits (B,).

    Args:
        config: the search's settings (orders, rank, space, sizes).
        feature_names: categorical features (one table each, dim ``config.emb_dim``).
        num_embeddings: rows of each feature's table.
        dense_names: numeric features (fields too with ``dense_as_fields``).
    """

    def __init__(
        self,
        *,
        config: ProfitConfig,
        feature_names: list[str],
        num_embeddings: list[int],
        dense_names: list[str],
    ) -> None:
        super().__init__()
        d, o_max = config.emb_dim, config.max_order
        self.embeddings = per_feature_embeddings(feature_names, num_embeddings, d)
        self.dense_fields = (
            DenseBuckets(dense_in=len(dense_names), dim_out=d, buckets=config.dense_buckets)
            if config.dense_as_fields and dense_names
            else None
        )
        self.field_names = config.fields(feature_names, dense_names)
        m = len(self.field_names)
        self.field_norm = config.field_norm
        self.norm = (
            nn.BatchNorm1d(m if config.field_norm == "field" else m * d, affine=False)
            if config.field_norm != "none"
            else nn.Identity()
        )
        self.full_space = config.mode == "full-space"
        gen = torch.Generator().manual_seed(config.seed)
        weights = []
        for o in range(1, o_max + 1):
            if self.full_space:  # one free weight per cross, all starting equal (AutoFIS)
                w = torch.full([m] * o, 1.0 / math.sqrt(math.comb(m, o)))
            else:  # positive, a little apart so the R components do not stay identical
                scale = _init_scale(m, o, config.rank)
                w = scale * (0.75 + 0.5 * torch.rand(config.rank, m, generator=gen))
            weights.append(nn.Parameter(w))
        self.arch_weights = nn.ParameterList(weights)
        self.max_order = o_max
        self.active_order = o_max
        head_in = o_max * d + (len(dense_names) if self.dense_fields is None else 0)
        hidden, width = mlp(head_in, list(config.head_hidden))
        self.head = nn.Sequential(hidden, nn.Linear(width, 1))

    def arch_parameters(self, orders: list[int] | None = None) -> dict[str, nn.Parameter]:
        """The architecture weights of ``orders`` (1-based; default: every order)."""
        orders = orders or list(range(1, self.max_order + 1))
        return {f"arch_weights.{o - 1}": self.arch_weights[o - 1] for o in orders}

    def search_orders(self, orders: list[int]) -> None:
        """Search ``orders`` (1-based): only their weights take gradients; lower orders stay as
        they are (frozen), higher ones are left out of the network."""
        for o, w in enumerate(self.arch_weights, start=1):
            w.requires_grad_(o in orders)
        self.active_order = max(orders)

    def fields(
        self, dense: torch.Tensor, sparse: KeyedJaggedTensor, embedding_grad: bool = True
    ) -> torch.Tensor:
        """(B, M, d): normalized field embeddings (categorical, then numeric)."""
        if embedding_grad:
            emb = self.embeddings(sparse)
        else:
            with torch.no_grad():
                emb = self.embeddings(sparse)
        if self.dense_fields is not None:
            emb = torch.cat([emb, self.dense_fields(dense, emb)], dim=1)
        if self.field_norm == "coordinate":
            return self.norm(emb.flatten(1)).view_as(emb)
        return self.norm(emb)

    def forward(
        self, dense: torch.Tensor, sparse: KeyedJaggedTensor, embedding_grad: bool = True
    ) -> torch.Tensor:
        """Logits (B,). ``embedding_grad=False`` looks embeddings up without autograd, so a
        backward pass (the architecture step) does not fire the fused embedding optimizer."""
        f = self.fields(dense, sparse, embedding_grad)
        parts = []
        for o in range(1, self.max_order + 1):
            if o > self.active_order:
                parts.append(f.new_zeros(f.shape[0], f.shape[2]))
            elif self.full_space:
                parts.append(full_cross_sum(f, self.arch_weights[o - 1], o))
            else:
                parts.append(cp_cross_sum(f, self.arch_weights[o - 1], o))
        if self.dense_fields is None:
            parts.append(dense)
        return self.head(torch.cat(parts, dim=1)).squeeze(-1)

    def arch_state(self) -> dict[str, Any]:
        """Each order's architecture weights as JSON lists."""
        return {"weights": [w.detach().tolist() for w in self.arch_weights]}
