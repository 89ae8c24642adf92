"""The DistDNAS supernet: choice blocks mixing every op with Gumbel-softmax weights.

Eq. 1-2 of the paper: block i's dense output is sum_j w_ij * op_j(x) with
w_i = GumbelSoftmax(alpha_i, lambda) over the 5 dense ops, and likewise for the 5
sparse ops with beta_i. In eval mode (and for the cost term) the weights are the
noise-free softmax(alpha / lambda). The wiring is the one of ``space``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import mlp, per_feature_embeddings
from recsearch.ops import Shapes, create_op
from recsearch.search.distdnas.config import SpaceConfig
from recsearch.search.distdnas.space import DENSE_OPS, SPARSE_OPS, op_args


class ChoiceBlock(nn.Module):
    """One choice block: the mergers, then every dense and every sparse op of the space.

    Args:
        dense_widths: widths of the dense inputs (each also becomes one sparse field).
        sparse_fields: fields of the sparse input (its width is ``space.emb_dim``).
        space: the search space.
    """

    def __init__(
        self, *, dense_widths: list[int], sparse_fields: int, space: SpaceConfig, index: int = 2
    ) -> None:
        super().__init__()
        e = space.emb_dim
        self.to_field = nn.ModuleList([nn.Linear(w, e) for w in dense_widths])
        dense_in = sum(dense_widths) + sparse_fields * e
        fields_in = sparse_fields + len(dense_widths)
        dense_shapes = Shapes(dense_in, fields_in, e, dense_out=space.dense_dim)
        sparse_shapes = Shapes(dense_in, fields_in, e, fields_out=space.sparse_fields, dim_out=e)
        self.dense_ops = nn.ModuleList(
            [create_op(op, dense_shapes, op_args(op, space, index)) for op in DENSE_OPS]
        )
        self.sparse_ops = nn.ModuleList(
            [create_op(op, sparse_shapes, op_args(op, space, index)) for op in SPARSE_OPS]
        )
        # op_norm: each op's output on one scale before mixing (no affine: the mixing weight is its scale)
        self.dense_op_norm = (
            nn.LayerNorm(space.dense_dim, elementwise_affine=False) if space.op_norm else nn.Identity()
        )
        self.sparse_op_norm = nn.LayerNorm(e, elementwise_affine=False) if space.op_norm else nn.Identity()
        self.dense_norm = nn.LayerNorm(space.dense_dim) if space.block_norm else nn.Identity()
        self.sparse_norm = nn.LayerNorm(e) if space.block_norm else nn.Identity()

    def forward(
        self, dense: list[torch.Tensor], sparse: torch.Tensor, w_dense: torch.Tensor, w_sparse: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_dense = torch.cat([*dense, sparse.flatten(1)], dim=1)
        x_sparse = torch.cat(
            [sparse, *[m(d).unsqueeze(1) for m, d in zip(self.to_field, dense, strict=True)]], 1
        )
        out_dense = sum(
            w_dense[j] * self.dense_op_norm(op(x_dense, x_sparse)) for j, op in enumerate(self.dense_ops)
        )
        out_sparse = sum(
            w_sparse[j] * self.sparse_op_norm(op(x_dense, x_sparse)) for j, op in enumerate(self.sparse_ops)
        )
        return self.dense_norm(out_dense), self.sparse_norm(out_sparse)


class Supernet(nn.Module):
    """TorchRec embeddings + N choice blocks + head; ``alpha``/``beta`` are (N, 5) logits.

    Args:
        space: the search space.
        feature_names: sparse features (one table each, dim ``space.emb_dim``).
        num_embeddings: rows of each feature's table.
        num_dense: dense features.
        temperature: Gumbel-softmax temperature lambda.
    """

    def __init__(
        self,
        *,
        space: SpaceConfig,
        feature_names: list[str],
        num_embeddings: list[int],
        num_dense: int,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        space.check()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.space = space
        self.temperature = temperature
        e = space.emb_dim
        self.embeddings = per_feature_embeddings(list(feature_names), list(num_embeddings), e)
        blocks = []
        fields = len(feature_names)
        for i in range(1, space.num_blocks + 1):
            # dense inputs: the outputs of blocks i-1 and i-2 (block 0 = the dense features)
            widths = [num_dense] if i == 1 else [space.dense_dim, space.dense_dim if i > 2 else num_dense]
            blocks.append(ChoiceBlock(dense_widths=widths, sparse_fields=fields, space=space, index=i))
            fields = space.sparse_fields
        self.blocks = nn.ModuleList(blocks)
        hidden, width = mlp(space.dense_dim + space.sparse_fields * e, list(space.head_hidden))
        self.head = nn.Sequential(hidden, nn.Linear(width, 1))
        # architecture parameters: uniform mixing at the start
        self.alpha = nn.Parameter(torch.zeros(space.num_blocks, len(DENSE_OPS)))
        self.beta = nn.Parameter(torch.zeros(space.num_blocks, len(SPARSE_OPS)))

    def arch_parameters(self) -> dict[str, nn.Parameter]:
        """The architecture parameters (alpha, beta), trained by their own optimizer on
        held-out batches; the weight optimizer leaves them alone."""
        return {"alpha": self.alpha, "beta": self.beta}

    def mixing_weights(self, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 5) dense and sparse weights: Gumbel-softmax samples, or softmax(logits / lambda)."""
        if sample:
            return (
                F.gumbel_softmax(self.alpha, tau=self.temperature, dim=-1),
                F.gumbel_softmax(self.beta, tau=self.temperature, dim=-1),
            )
        return F.softmax(self.alpha / self.temperature, -1), F.softmax(self.beta / self.temperature, -1)

    def forward(
        self,
        dense: torch.Tensor,
        sparse: KeyedJaggedTensor,
        embedding_grad: bool = True,
        sample: bool | None = None,
    ) -> torch.Tensor:
        """Logits (B,). ``embedding_grad=False`` looks embeddings up without autograd, so a
        backward pass (the architecture step) does not fire the fused embedding optimizer.
        ``sample``: Gumbel-sampled mixing weights (default: in training mode) or noise-free."""
        if embedding_grad:
            emb = self.embeddings(sparse)
        else:
            with torch.no_grad():
                emb = self.embeddings(sparse)
        w_dense, w_sparse = self.mixing_weights(sample=self.training if sample is None else sample)
        prev2, prev1 = dense, dense
        sparse_x = emb
        for i, block in enumerate(self.blocks):
            inputs = [prev1] if i == 0 else [prev1, prev2]
            out_dense, sparse_x = block(inputs, sparse_x, w_dense[i], w_sparse[i])
            prev2, prev1 = prev1, out_dense
        return self.head(torch.cat([prev1, sparse_x.flatten(1)], dim=1)).squeeze(-1)

    def arch_state(self) -> dict[str, Any]:
        """The architecture parameters and their noise-free mixing weights, as JSON lists."""
        w_dense, w_sparse = self.mixing_weights(sample=False)
        return {
            "alpha": self.alpha.detach().tolist(),
            "beta": self.beta.detach().tolist(),
            "dense_weights": w_dense.detach().tolist(),
            "sparse_weights": w_sparse.detach().tolist(),
        }
