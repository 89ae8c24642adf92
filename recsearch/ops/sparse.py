"""Sparse-output interaction operators: (dense B x D, sparse B x N_in x E_in) -> B x N_out x E_out."""

from __future__ import annotations

import math

import torch
from torch import nn

from recsearch.ops.dense import _proj


class _FieldProj(nn.Module):
    """Linear map along the field axis: (B, N_in, E) -> (B, N_out, E)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.fc = _proj(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.transpose(1, 2)).transpose(1, 2)


class SparseIdentity(nn.Module):
    """Identity3D: pass the sparse fields through (projected where shapes differ).

    Args:
        num_fields: N_in.
        emb_dim: E_in.
        fields_out: N_out.
        dim_out: E_out.

    Example:
        >>> op = SparseIdentity(num_fields=3, emb_dim=5, fields_out=2, dim_out=4)
        >>> op(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 2, 4])
    """

    def __init__(self, *, num_fields: int, emb_dim: int, fields_out: int, dim_out: int) -> None:
        super().__init__()
        self.fields = _FieldProj(num_fields, fields_out)
        self.dims = _proj(emb_dim, dim_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.dims(self.fields(sparse))


class Add3D(nn.Module):
    """Element-wise sum of ``parts`` equal groups of fields of the sparse input (projected).

    The sparse counterpart of ``Add``: a block whose sparse input concatenates
    several op outputs of the same shape along the field axis sums them.

    Args:
        num_fields: N_in (``parts`` x fields per part).
        emb_dim: E_in.
        fields_out: N_out (the fields per part are projected to it).
        dim_out: E_out.
        parts: number of equal groups of fields.
        layer_norm: layer-normalize each field of the sum.
        part_norm: normalize each field of each part (layer norm without affine) before
            summing, as ``Add``'s ``part_norm``.

    Example:
        >>> add3d = Add3D(num_fields=4, emb_dim=3, fields_out=2, dim_out=3, parts=2)
        >>> add3d(torch.ones(2, 8), torch.ones(2, 4, 3))[0]
        tensor([[2., 2., 2.],
                [2., 2., 2.]])
    """

    def __init__(
        self,
        *,
        num_fields: int,
        emb_dim: int,
        fields_out: int,
        dim_out: int,
        parts: int = 1,
        layer_norm: bool = False,
        part_norm: bool = False,
    ) -> None:
        super().__init__()
        if parts < 1 or num_fields % parts:
            raise ValueError(f"add3d: {num_fields} input fields do not split into {parts} equal parts")
        self.parts = parts
        self.out = SparseIdentity(
            num_fields=num_fields // parts, emb_dim=emb_dim, fields_out=fields_out, dim_out=dim_out
        )
        self.norm = nn.LayerNorm(dim_out) if layer_norm else nn.Identity()
        self.part_norm = nn.LayerNorm(emb_dim, elementwise_affine=False) if part_norm else nn.Identity()

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        b, n, e = sparse.shape
        parts_BPNE = self.part_norm(sparse.view(b, self.parts, n // self.parts, e))
        return self.norm(self.out(dense, parts_BPNE.sum(dim=1)))


class SparseLinear(nn.Module):
    """Linear3D: a linear layer with ReLU on every field's embedding (weights shared).

    NASRec (Zhang et al., 2022) / DistDNAS (Zhang et al., 2023) sparse "Linear".

    Args:
        num_fields: N_in.
        emb_dim: E_in.
        fields_out: N_out.
        dim_out: E_out.

    Example:
        >>> op = SparseLinear(num_fields=3, emb_dim=5, fields_out=3, dim_out=4)
        >>> op(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, *, num_fields: int, emb_dim: int, fields_out: int, dim_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(emb_dim, dim_out)
        self.fields = _FieldProj(num_fields, fields_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.fields(torch.relu(self.fc(sparse)))


class EmbedFC(nn.Module):
    """EmbedFC: a linear layer along the field axis, mixing fields per coordinate.

    NASRec (Zhang et al., 2022): maps N_in fields to N_out fields.

    Args:
        num_fields: N_in.
        emb_dim: E_in.
        fields_out: N_out.
        dim_out: E_out (projected when it differs from E_in).

    Example:
        >>> op = EmbedFC(num_fields=3, emb_dim=5, fields_out=7, dim_out=5)
        >>> op(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 7, 5])
    """

    def __init__(self, *, num_fields: int, emb_dim: int, fields_out: int, dim_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(num_fields, fields_out)
        self.dims = _proj(emb_dim, dim_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.dims(self.fc(sparse.transpose(1, 2)).transpose(1, 2))


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Scaled dot-product attention over (B, L, D) tensors split into ``heads``."""
    b, lq, d = q.shape
    lk = k.shape[1]
    hd = d // heads
    q_BHLd = q.reshape(b, lq, heads, hd).transpose(1, 2)
    k_BHLd = k.reshape(b, lk, heads, hd).transpose(1, 2)
    v_BHLd = v.reshape(b, lk, heads, hd).transpose(1, 2)
    scores_BHqk = torch.matmul(q_BHLd, k_BHLd.transpose(2, 3)) / math.sqrt(hd)
    out_BHLd = torch.matmul(torch.softmax(scores_BHqk, dim=-1), v_BHLd)
    return out_BHLd.transpose(1, 2).reshape(b, lq, d)


class Transformer(nn.Module):
    """Self-attention over fields (queries = keys = values) + feed-forward, post-norm.

    Vaswani et al. (2017), as used on feature fields by AutoInt (Song et al., 2019).

    Args:
        num_fields: N_in.
        emb_dim: E_in.
        fields_out: N_out.
        dim_out: E_out.
        num_heads: attention heads (must divide emb_dim).
        ffn_dim: hidden width of the feed-forward part.

    Example:
        >>> op = Transformer(num_fields=3, emb_dim=8, fields_out=3, dim_out=8)
        >>> op(torch.ones(2, 4), torch.ones(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(
        self,
        *,
        num_fields: int,
        emb_dim: int,
        fields_out: int,
        dim_out: int,
        num_heads: int = 2,
        ffn_dim: int = 64,
    ) -> None:
        super().__init__()
        if emb_dim % num_heads:
            raise ValueError(f"Transformer: num_heads={num_heads} must divide emb_dim={emb_dim}")
        self.heads = num_heads
        self.qkv = nn.Linear(emb_dim, 3 * emb_dim)
        self.attn_out = nn.Linear(emb_dim, emb_dim)
        self.norm1 = nn.LayerNorm(emb_dim)
        self.ffn = nn.Sequential(nn.Linear(emb_dim, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, emb_dim))
        self.norm2 = nn.LayerNorm(emb_dim)
        self.fields = _FieldProj(num_fields, fields_out)
        self.dims = _proj(emb_dim, dim_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(sparse).chunk(3, dim=-1)
        x_BNE = self.norm1(sparse + self.attn_out(_attention(q, k, v, self.heads)))
        x_BNE = self.norm2(x_BNE + self.ffn(x_BNE))
        return self.dims(self.fields(x_BNE))


class PMA(nn.Module):
    """Pooling by multi-head attention: ``fields_out`` learned seeds attend to the fields.

    Lee et al., "Set Transformer" (2019), used on sparse features by DistDNAS.

    Args:
        num_fields: N_in.
        emb_dim: E_in.
        fields_out: N_out, the number of seed vectors.
        dim_out: E_out.
        num_heads: attention heads (must divide emb_dim).

    Example:
        >>> op = PMA(num_fields=3, emb_dim=8, fields_out=2, dim_out=8)
        >>> op(torch.ones(2, 4), torch.ones(2, 3, 8)).shape
        torch.Size([2, 2, 8])
    """

    def __init__(
        self, *, num_fields: int, emb_dim: int, fields_out: int, dim_out: int, num_heads: int = 2
    ) -> None:
        super().__init__()
        if emb_dim % num_heads:
            raise ValueError(f"PMA: num_heads={num_heads} must divide emb_dim={emb_dim}")
        self.heads = num_heads
        self.seeds = nn.Parameter(torch.randn(1, fields_out, emb_dim) / math.sqrt(emb_dim))
        self.q = nn.Linear(emb_dim, emb_dim)
        self.kv = nn.Linear(emb_dim, 2 * emb_dim)
        self.norm = nn.LayerNorm(emb_dim)
        self.ffn = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.ReLU())
        self.dims = _proj(emb_dim, dim_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        seeds_BKE = self.seeds.expand(sparse.shape[0], -1, -1)
        k, v = self.kv(sparse).chunk(2, dim=-1)
        h_BKE = self.norm(seeds_BKE + _attention(self.q(seeds_BKE), k, v, self.heads))
        return self.dims(h_BKE + self.ffn(h_BKE))


class CIN(nn.Module):
    """Compressed interaction network: X^k = W^k (X^{k-1} outer X^0), per coordinate.

    Lian et al., "xDeepFM" (2018). Returns the last layer's feature maps as fields.

    Args:
        num_fields: N_in (= m, the fields of X^0).
        emb_dim: E.
        fields_out: N_out, feature maps of the output.
        dim_out: E_out.
        layer_sizes: feature maps H_k of each layer.

    Example:
        >>> op = CIN(num_fields=3, emb_dim=5, fields_out=4, dim_out=5)
        >>> op(torch.ones(2, 8), torch.ones(2, 3, 5)).shape
        torch.Size([2, 4, 5])
    """

    def __init__(
        self,
        *,
        num_fields: int,
        emb_dim: int,
        fields_out: int,
        dim_out: int,
        layer_sizes: tuple[int, ...] = (16, 16),
    ) -> None:
        super().__init__()
        sizes = [num_fields, *layer_sizes]
        self.layers = nn.ModuleList(
            [nn.Conv1d(sizes[i] * num_fields, sizes[i + 1], kernel_size=1) for i in range(len(layer_sizes))]
        )
        self.fields = _FieldProj(sizes[-1], fields_out)
        self.dims = _proj(emb_dim, dim_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        x0_BME = sparse
        x_BHE = sparse
        b, e = sparse.shape[0], sparse.shape[2]
        for layer in self.layers:
            outer_BHME = x_BHE.unsqueeze(2) * x0_BME.unsqueeze(1)
            x_BHE = torch.relu(layer(outer_BHME.reshape(b, -1, e)))
        return self.dims(self.fields(x_BHE))


class DenseToFields(nn.Module):
    """Project a dense input into ``fields_out`` sparse fields (NASRec's Project-Concat).

    Zhang et al., "NASRec" (WWW 2023), Sec. 3.1: a dense output joins the sparse branch as
    extra fields (the released code uses 8 fields of the embedding width).

    Args:
        dense_in: width of the dense input.
        fields_out: N_out.
        dim_out: E_out.

    Example:
        >>> DenseToFields(dense_in=6, fields_out=8, dim_out=4)(torch.ones(2, 6), torch.ones(2, 1, 4)).shape
        torch.Size([2, 8, 4])
    """

    def __init__(self, *, dense_in: int, fields_out: int, dim_out: int) -> None:
        super().__init__()
        self.fields_out, self.dim_out = fields_out, dim_out
        self.fc = nn.Linear(dense_in, fields_out * dim_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.fc(dense).view(dense.shape[0], self.fields_out, self.dim_out)
