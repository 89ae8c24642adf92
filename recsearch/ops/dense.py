"""Dense-output interaction operators: (dense B x D_in, sparse B x N x E) -> B x D_out.

Every operator takes both inputs so that blocks compose uniformly; each uses the
part its paper defines and projects linearly wherever widths differ.
"""

from __future__ import annotations

import torch
from torch import nn


def _proj(in_dim: int, out_dim: int) -> nn.Module:
    """Identity when widths match, else a linear projection."""
    return nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim)


class DenseIdentity(nn.Module):
    """Pass the dense input through (projected if widths differ).

    Args:
        dense_in: width of the dense input.
        dense_out: width of the output.

    Example:
        >>> DenseIdentity(dense_in=8, dense_out=4)(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, dense_out: int) -> None:
        super().__init__()
        self.proj = _proj(dense_in, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.proj(dense)


class DenseLinear(nn.Module):
    """Fully connected layer with ReLU (the MLP unit of DLRM / NASRec).

    Args:
        dense_in: width of the dense input.
        dense_out: width of the output.

    Example:
        >>> DenseLinear(dense_in=8, dense_out=4)(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, dense_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dense_in, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(dense))


class DotProduct(nn.Module):
    """Pairwise inner products of the projected dense vector and the sparse fields.

    DLRM (Naumov et al., 2019); with ``compress_fields``, NASRec's operator
    balancing (Zhang et al., 2022) first maps the N fields to ``compress_fields``
    with a linear layer along the field axis (EmbedFC) to bound the N^2 cost.

    Args:
        dense_in: width of the dense input (projected to ``emb_dim`` as one more field).
        num_fields: N, fields of the sparse input.
        emb_dim: E, width of each field.
        dense_out: width of the output (the flattened upper triangle, projected).
        compress_fields: fields after EmbedFC compression, or None for none.

    Example:
        >>> op = DotProduct(dense_in=8, num_fields=3, emb_dim=5, dense_out=6)
        >>> op(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 6])
    """

    def __init__(
        self,
        *,
        dense_in: int,
        num_fields: int,
        emb_dim: int,
        dense_out: int,
        compress_fields: int | None = None,
    ) -> None:
        super().__init__()
        self.dense_proj = _proj(dense_in, emb_dim)
        fields = num_fields if compress_fields is None else compress_fields
        self.compress = nn.Identity() if compress_fields is None else nn.Linear(num_fields, compress_fields)
        n = fields + 1
        rows, cols = torch.triu_indices(n, n, offset=1)
        # one flat index_select (backward: index_add) instead of 2-D advanced indexing
        self.register_buffer("upper", rows * n + cols, persistent=False)
        self.out = _proj(n * (n - 1) // 2, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        fields_BNE = self.compress(sparse.transpose(1, 2)).transpose(1, 2)
        all_BNE = torch.cat([self.dense_proj(dense).unsqueeze(1), fields_BNE], dim=1)
        gram_BNN = torch.bmm(all_BNE, all_BNE.transpose(1, 2))
        return self.out(torch.index_select(gram_BNN.flatten(1), 1, self.upper))  # type: ignore[arg-type]


class CrossNet(nn.Module):
    """DCN-v2 cross network: x_{l+1} = x_0 * (W_l x_l + b_l) + x_l.

    Wang et al., "DCN V2: Improved Deep & Cross Network" (2021); ``low_rank``
    factorizes W_l = U_l V_l as in the paper's low-rank variant.

    Args:
        dense_in: width of the input x_0.
        dense_out: width of the output (projected).
        num_layers: number of cross layers.
        low_rank: rank of W_l, or None for full rank.

    Example:
        >>> CrossNet(dense_in=8, dense_out=4, num_layers=2)(torch.ones(2, 8), torch.ones(2, 1, 1)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self, *, dense_in: int, dense_out: int, num_layers: int = 2, low_rank: int | None = None
    ) -> None:
        super().__init__()
        if low_rank is None:
            self.layers = nn.ModuleList([nn.Linear(dense_in, dense_in) for _ in range(num_layers)])
        else:
            self.layers = nn.ModuleList(
                [
                    nn.Sequential(nn.Linear(dense_in, low_rank, bias=False), nn.Linear(low_rank, dense_in))
                    for _ in range(num_layers)
                ]
            )
        self.out = _proj(dense_in, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        x0 = dense
        x = dense
        for layer in self.layers:
            x = x0 * layer(x) + x
        return self.out(x)


class PIN(nn.Module):
    """Polynomial interaction network: x_l = x_{l-1} * (W_l x_0 + b_l) + x_{l-1}.

    Yan et al., "xDeepInt" (2023): each layer raises the interaction order by one
    with an element-wise (bit-wise) gated product against the input.

    Args:
        dense_in: width of the input x_0.
        dense_out: width of the output (projected).
        num_layers: number of layers (the highest order is num_layers + 1).

    Example:
        >>> PIN(dense_in=8, dense_out=4)(torch.ones(2, 8), torch.ones(2, 1, 1)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, dense_out: int, num_layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dense_in, dense_in) for _ in range(num_layers)])
        self.out = _proj(dense_in, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        x = dense
        for layer in self.layers:
            x = x * layer(dense) + x
        return self.out(x)


class SigmoidGating(nn.Module):
    """Sigmoid gating: x * sigmoid(W x + b), as in NASRec's search space.

    Args:
        dense_in: width of the input.
        dense_out: width of the output (projected).

    Example:
        >>> SigmoidGating(dense_in=8, dense_out=4)(torch.ones(2, 8), torch.ones(2, 1, 1)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, dense_out: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dense_in, dense_in)
        self.out = _proj(dense_in, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.out(dense * torch.sigmoid(self.gate(dense)))


class Sum(nn.Module):
    """Element-wise sum of the dense input and the sum-pooled sparse fields (NASRec).

    Args:
        dense_in: width of the dense input.
        emb_dim: E, width of each sparse field.
        dense_out: width of the output; both parts are projected to it.

    Example:
        >>> Sum(dense_in=8, emb_dim=5, dense_out=4)(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, emb_dim: int, dense_out: int) -> None:
        super().__init__()
        self.use_dense = dense_in > 0  # a block may feed sparse inputs only
        self.dense_proj = _proj(dense_in, dense_out) if self.use_dense else nn.Identity()
        self.sparse_proj = _proj(emb_dim, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        pooled = self.sparse_proj(sparse.sum(dim=1))
        if self.use_dense:
            return self.dense_proj(dense) + pooled
        return pooled


class Add(nn.Module):
    """Element-wise sum of ``parts`` equal-width parts of the dense input (projected).

    A block whose dense input concatenates several op outputs of the same width sums
    them with this op: how a discretized DistDNAS choice block merges the ops it keeps
    (the supernet's weighted sum, with the weights dropped), and normalizes them where
    the search space does.

    Args:
        dense_in: width of the dense input (``parts`` x part width).
        dense_out: width of the output (the part width is projected to it).
        parts: number of equal parts.
        layer_norm: layer-normalize the sum.
        part_norm: normalize each part (layer norm without affine) before summing, as a
            DistDNAS supernet with ``op_norm`` normalizes each op's output before mixing.

    Example:
        >>> add = Add(dense_in=6, dense_out=3, parts=2)
        >>> add(torch.tensor([[1.0, 2, 3, 10, 20, 30]]), torch.ones(1, 1, 4))
        tensor([[11., 22., 33.]])
    """

    def __init__(
        self,
        *,
        dense_in: int,
        dense_out: int,
        parts: int = 1,
        layer_norm: bool = False,
        part_norm: bool = False,
    ) -> None:
        super().__init__()
        if parts < 1 or dense_in % parts:
            raise ValueError(f"add: dense input width {dense_in} does not split into {parts} equal parts")
        self.parts = parts
        width = dense_in // parts
        self.part_norm = nn.LayerNorm(width, elementwise_affine=False) if part_norm else nn.Identity()
        self.proj = _proj(width, dense_out)
        self.norm = nn.LayerNorm(dense_out) if layer_norm else nn.Identity()

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        parts_BPW = self.part_norm(dense.view(dense.shape[0], self.parts, -1))
        return self.norm(self.proj(parts_BPW.sum(dim=1)))


class FM(nn.Module):
    """Factorization-machine second-order term over the sparse fields.

    Rendle, "Factorization Machines" (2010): 0.5 * ((sum_i e_i)^2 - sum_i e_i^2),
    kept per embedding coordinate (B x E) and projected to ``dense_out``; with
    ``dense_out == 1`` and ``reduce`` the classic scalar FM term.

    Args:
        emb_dim: E, width of each sparse field.
        dense_out: width of the output.
        reduce: sum over the E coordinates (requires dense_out == 1).

    Example:
        >>> FM(emb_dim=5, dense_out=1, reduce=True)(torch.ones(2, 8), torch.ones(2, 3, 5))
        tensor([[15.],
                [15.]])
    """

    def __init__(self, *, emb_dim: int, dense_out: int, reduce: bool = False) -> None:
        super().__init__()
        if reduce and dense_out != 1:
            raise ValueError("FM(reduce=True) gives one value: set dense_out=1")
        self.reduce = reduce
        self.out = nn.Identity() if reduce else _proj(emb_dim, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        square_of_sum_BE = sparse.sum(dim=1).pow(2)
        sum_of_square_BE = sparse.pow(2).sum(dim=1)
        fm_BE = 0.5 * (square_of_sum_BE - sum_of_square_BE)
        if self.reduce:
            return fm_BE.sum(dim=1, keepdim=True)
        return self.out(fm_BE)


class _PairInput(nn.Module):
    """Split a dense input into its left (first ``left_width``) and right parts, zero-padded
    to a common width: how NASRec's binary operators take two inputs of any widths."""

    def __init__(self, *, dense_in: int, left_width: int) -> None:
        super().__init__()
        if not 0 < left_width < dense_in:
            raise ValueError(f"left_width must be in (0, {dense_in}), got {left_width}")
        self.left_width = left_width
        self.right_width = dense_in - left_width
        self.width = max(left_width, self.right_width)

    def forward(self, dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        left, right = dense[:, : self.left_width], dense[:, self.left_width :]
        left = nn.functional.pad(left, (0, self.width - self.left_width))
        right = nn.functional.pad(right, (0, self.width - self.right_width))
        return left, right


class PairSum(nn.Module):
    """NASRec's Sum: two dense inputs (zero-padded to one width) added, then projected.

    Zhang et al., "NASRec: Weight Sharing Neural Architecture Search for Recommender
    Systems" (WWW 2023), Sec. 3.1; the dense input is the concatenation [left, right].

    Args:
        dense_in: width of [left, right].
        dense_out: width of the output.
        left_width: width of the left input (the first part of the dense input).

    Example:
        >>> op = PairSum(dense_in=5, dense_out=4, left_width=2)
        >>> op(torch.ones(2, 5), torch.ones(2, 1, 1)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, dense_out: int, left_width: int) -> None:
        super().__init__()
        self.pair = _PairInput(dense_in=dense_in, left_width=left_width)
        self.proj = nn.Linear(self.pair.width, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        left, right = self.pair(dense)
        return self.proj(left + right)


class PairGating(nn.Module):
    """NASRec's Sigmoid Gating of two dense inputs: proj(right * sigmoid(W left + b)).

    Zhang et al., "NASRec" (WWW 2023), Sec. 3.1 (after Chen et al., 2019); both inputs are
    zero-padded to one width.

    Args:
        dense_in: width of [left, right].
        dense_out: width of the output.
        left_width: width of the left input (the gate's input).

    Example:
        >>> op = PairGating(dense_in=5, dense_out=4, left_width=2)
        >>> op(torch.ones(2, 5), torch.ones(2, 1, 1)).shape
        torch.Size([2, 4])
    """

    def __init__(self, *, dense_in: int, dense_out: int, left_width: int) -> None:
        super().__init__()
        self.pair = _PairInput(dense_in=dense_in, left_width=left_width)
        self.gate = nn.Linear(self.pair.width, self.pair.width)
        self.proj = nn.Linear(self.pair.width, dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        left, right = self.pair(dense)
        return self.proj(right * torch.sigmoid(self.gate(left)))
