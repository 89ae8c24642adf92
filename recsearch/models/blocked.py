"""Frequency-blocked embeddings: each feature's id range cut into blocks, one TorchRec table
per (feature, block) at its own dim, projected to a common width and summed per feature.

The shards' ids are frequency ranks (0 missing, 1 rare, then by descending count), so a
block of ids is a frequency block. DNIS (Cheng et al., "Differentiable Neural Input Search
for Recommender Systems", Sec. 2.3, 2.5) gives frequent ids wide embeddings and rare ids
narrow or none; this module holds such a result as real tables: a block of dim 0 has no
table and its ids look up zeros. A row's ids are routed to their blocks' tables inside the
model (``route``), so the model takes the same KeyedJaggedTensor as any other and exports
the same way; DMP shards the one EmbeddingBagCollection of all block tables.
"""

from __future__ import annotations

import torch
from torch import nn
from torchrec.modules.embedding_configs import EmbeddingBagConfig
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.tables import sum_table


def block_key(feature: str, block: int) -> str:
    """The KJT key (and ``t_<key>`` table) of a feature's block."""
    return f"{feature}__b{block}"


def block_rows(starts: list[int], num_embeddings: int) -> list[int]:
    """Rows of each block of a table whose blocks start at ``starts`` (the first 0)."""
    return [e - s for s, e in zip(starts, [*starts[1:], num_embeddings], strict=True)]


class BlockedEmbeddings(nn.Module):
    """KJT -> (B, N, E): per feature, the sum over its blocks of each block table's pooled
    vector projected to ``common_dim`` (no bias: a bag with no id in a block adds nothing).

    Args:
        feature_names: features in output order.
        num_embeddings: rows of each feature's id range.
        starts: per feature, the first id of each block (``[0]``: one block, the whole range).
        dims: per feature, each block's dim (0: no table, its ids look up zeros).
        common_dim: E of the output; a block at that dim is not projected.
        init_bound: one bound b for every table, U(-b, b); None: each feature's own (below).
    """

    def __init__(
        self,
        *,
        feature_names: list[str],
        num_embeddings: list[int],
        starts: list[list[int]],
        dims: list[list[int]],
        common_dim: int,
        init_bound: float | None = None,
    ) -> None:
        super().__init__()
        self.feature_names = list(feature_names)
        self.common_dim = common_dim
        self.starts = [list(s) for s in starts]
        self.dims = [list(d) for d in dims]
        self.ends = [[*s[1:], n] for s, n in zip(starts, num_embeddings, strict=True)]
        configs: list[EmbeddingBagConfig] = []
        projs: dict[str, nn.Module] = {}
        self.keys: list[list[str]] = []  # per feature: the keys of its kept blocks ("" if none)
        for f, n, s, d in zip(feature_names, num_embeddings, starts, dims, strict=True):
            # every block starts as the whole table would, U(-1/sqrt(n), 1/sqrt(n)) with n the
            # feature's rows: TorchRec's default uses the block's own rows, which gives a block
            # of 2 frequent ids values ~0.7 and one of 100k rare ids ~0.003
            bound = n**-0.5 if init_bound is None else init_bound
            keys = []
            for b, (rows, dim) in enumerate(zip(block_rows(s, n), d, strict=True)):
                key = f if len(s) == 1 else block_key(f, b)
                keys.append(key if dim > 0 else "")
                if dim > 0:
                    configs.append(sum_table(key, rows, dim, bound))
                    projs[key] = (
                        nn.Identity() if dim == common_dim else nn.Linear(dim, common_dim, bias=False)
                    )
            self.keys.append(keys)
        if not configs:
            raise ValueError("every block of every feature has dim 0: nothing to embed")
        self.ebc = EmbeddingBagCollection(tables=configs)
        self.projs = nn.ModuleDict(projs)

    def route(self, sparse: KeyedJaggedTensor) -> KeyedJaggedTensor:
        """The input with each feature's ids split into its kept blocks' keys, rebased to
        the block's first id (a bag keeps its position; ids of a dim-0 block are dropped)."""
        jts = sparse.to_dict()
        keys: list[str] = []
        values: list[torch.Tensor] = []
        lengths: list[torch.Tensor] = []
        for f, s, e, kept in zip(self.feature_names, self.starts, self.ends, self.keys, strict=True):
            jt = jts[f]
            v, n = jt.values(), jt.lengths()
            if len(s) == 1:
                if kept[0]:
                    keys.append(kept[0])
                    values.append(v)
                    lengths.append(n)
                continue
            bag = torch.repeat_interleave(torch.arange(n.numel(), device=n.device), n.long())
            for b in range(len(s)):
                if not kept[b]:
                    continue
                inside = (v >= s[b]) & (v < e[b])
                keys.append(kept[b])
                values.append(v[inside] - s[b])
                lengths.append(torch.bincount(bag[inside], minlength=n.numel()).to(n.dtype))
        return KeyedJaggedTensor(keys=keys, values=torch.cat(values), lengths=torch.cat(lengths))

    def block_vectors(self, sparse: KeyedJaggedTensor) -> dict[str, torch.Tensor]:
        """Each kept block's pooled vector (B, its dim), by key."""
        return self.ebc(self.route(sparse)).to_dict()

    def forward(self, sparse: KeyedJaggedTensor) -> torch.Tensor:
        pooled = self.block_vectors(sparse)
        some = pooled[next(k for kept in self.keys for k in kept if k)]
        out: list[torch.Tensor] = []
        for kept in self.keys:
            parts = [self.projs[k](pooled[k]) for k in kept if k]
            if not parts:  # every block pruned: the feature is all zeros
                out.append(some.new_zeros(some.shape[0], self.common_dim))
            elif len(parts) == 1:
                out.append(parts[0])
            else:
                out.append(torch.stack(parts, dim=0).sum(dim=0))
        return torch.stack(out, dim=1)
