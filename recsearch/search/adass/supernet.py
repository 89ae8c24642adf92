"""The AdaS&S supernet (Sec. 3.1): candidate embedding sizes per field, each size transformed
to the common width d_f by its own linear layer + BatchNorm (shared by the fields), into the
base model. ``independent``: a TorchRec table per (field, size); ``shared``: one table per
field at the largest size, a size reads its first columns. A forward pass takes the subnet:
a size index per field and which fields are kept (dropped ones feed zeros)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import build_interaction
from recsearch.models.tables import sum_table
from recsearch.search.adass.config import AdassConfig
from recsearch.search.common import base_model_arch


def base_arch(config: AdassConfig) -> dict[str, Any]:
    """The base model's arch at d_f."""
    return base_model_arch(config.base_model, config.common_dim, config.base_hidden)


def size_key(feature: str, size: int) -> str:
    return f"{feature}__s{size}"


class AdassSupernet(nn.Module):
    """Candidate-size tables, per-size transforms, the base model; logits (B,).

    Args:
        config: sizes, scheme, d_f, base model.
        feature_names: the categorical features.
        num_embeddings: rows of each feature's table.
        num_dense: dense width.
        dense_names: the numeric features' names.
    """

    def __init__(
        self,
        *,
        config: AdassConfig,
        feature_names: list[str],
        num_embeddings: list[int],
        num_dense: int,
        dense_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.sizes = list(config.sizes)
        self.shared = config.scheme == "shared"
        self.feature_names = list(feature_names)
        tables = []
        for f, n in zip(feature_names, num_embeddings, strict=True):
            widths = [max(self.sizes)] if self.shared else self.sizes
            for d in widths:
                tables.append(sum_table(f if self.shared else size_key(f, d), n, d))
        self.ebc = EmbeddingBagCollection(tables=tables)
        d_f = config.common_dim
        self.transforms = nn.ModuleList(
            [nn.Sequential(nn.Linear(d, d_f), nn.BatchNorm1d(d_f)) for d in self.sizes]
        )
        self.interaction = build_interaction(
            base_arch(config), num_dense, len(feature_names), d_f, feature_names, dense_names
        )
        self.pre: list[torch.Tensor] = []  # the last forward's per-field embeddings (for the sampling scores)

    def _lookup(self, sparse: KeyedJaggedTensor) -> dict[str, torch.Tensor]:
        if self.shared:
            return self.ebc(sparse).to_dict()
        jts = sparse.to_dict()
        keys, values, lengths = [], [], []
        for f in self.feature_names:  # every size's table reads the feature's ids
            for d in self.sizes:
                keys.append(size_key(f, d))
                values.append(jts[f].values())
                lengths.append(jts[f].lengths())
        return self.ebc(
            KeyedJaggedTensor(keys=keys, values=torch.cat(values), lengths=torch.cat(lengths))
        ).to_dict()

    def forward(
        self,
        dense: torch.Tensor,
        sparse: KeyedJaggedTensor,
        choice: list[int],
        keep: list[bool] | None = None,
        embedding_grad: bool = True,
    ) -> torch.Tensor:
        """Logits (B,) of the subnet ``choice`` (a size index per field), ``keep``ing those fields."""
        if embedding_grad:
            pooled = self._lookup(sparse)
        else:
            with torch.no_grad():
                pooled = self._lookup(sparse)
        self.pre = []
        fields = []
        for i, f in enumerate(self.feature_names):
            d = self.sizes[choice[i]]
            e = pooled[f][:, :d] if self.shared else pooled[size_key(f, d)]
            if e.requires_grad:
                e.retain_grad()
            self.pre.append(e)
            h = self.transforms[choice[i]](e)
            fields.append(h if keep is None or keep[i] else torch.zeros_like(h))
        return self.interaction(dense, torch.stack(fields, dim=1))
