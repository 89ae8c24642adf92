"""The DNIS search model: frequency-blocked tables at the base dim K, a soft selection layer
alpha (one row of K scales per (field, block), in [0, 1], starting at 1) between them and
the base model's interaction (Cheng et al., Eq. 4: e~_i = e_i (.) alpha_l)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.blocked import BlockedEmbeddings
from recsearch.models.builder import build_interaction
from recsearch.search.common import base_model_arch
from recsearch.search.dnis.config import DnisConfig


def base_arch(config: DnisConfig) -> dict[str, Any]:
    """The base model's arch at K."""
    return base_model_arch(config.base_model, config.emb_dim, config.base_hidden)


class DnisSupernet(nn.Module):
    """Blocked embeddings (B, F, K) scaled per block by alpha, into the base model; logits (B,).

    Args:
        config: the search's settings (base model, K).
        feature_names: the categorical features.
        num_embeddings: rows of each feature's id range.
        starts: each feature's frequency blocks (first ids).
        num_dense: dense width.
        dense_names: the numeric features' names.
    """

    def __init__(
        self,
        *,
        config: DnisConfig,
        feature_names: list[str],
        num_embeddings: list[int],
        starts: list[list[int]],
        num_dense: int,
        dense_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        k = config.emb_dim
        self.embeddings = BlockedEmbeddings(
            feature_names=feature_names,
            num_embeddings=num_embeddings,
            starts=starts,
            dims=[[k] * len(s) for s in starts],
            common_dim=k,
            # init=shared: one scale for every table, U(+-1/sqrt(all rows)), as the paper's one
            # embedding matrix E (N x K) has; per-table scales would let the magnitude rule rank
            # tables by their initial size instead of by what training made of them
            init_bound=sum(num_embeddings) ** -0.5 if config.init == "shared" else None,
        )
        # alpha's row of each (feature, block), in feature order
        self.rows: list[list[int]] = []
        for s in starts:
            first = sum(len(r) for r in self.rows)
            self.rows.append(list(range(first, first + len(s))))
        self.alpha = nn.Parameter(torch.ones(sum(len(s) for s in starts), k))
        self.interaction = build_interaction(
            base_arch(config), num_dense, len(feature_names), k, feature_names, dense_names
        )

    def arch_parameters(self) -> dict[str, nn.Parameter]:
        return {"alpha": self.alpha}

    def forward(
        self, dense: torch.Tensor, sparse: KeyedJaggedTensor, embedding_grad: bool = True
    ) -> torch.Tensor:
        """Logits (B,). ``embedding_grad=False`` looks embeddings up without autograd, so a
        backward pass (the architecture step) does not fire the fused embedding optimizer."""
        if embedding_grad:
            vectors = self.embeddings.block_vectors(sparse)
        else:
            with torch.no_grad():
                vectors = self.embeddings.block_vectors(sparse)
        fields = []
        for keys, rows in zip(self.embeddings.keys, self.rows, strict=True):
            scaled = [vectors[key] * self.alpha[r] for key, r in zip(keys, rows, strict=True)]
            fields.append(torch.stack(scaled, dim=0).sum(dim=0))
        return self.interaction(dense, torch.stack(fields, dim=1))
