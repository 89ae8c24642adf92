"""The NASRec supernet: densely connected choice blocks of elastic operators.

Zhang et al., "NASRec" (WWW 2023), Sec. 3-4. Every operator is built at the largest width
of the space; a path (``space.Block`` per block) selects ops, widths and connections:

* connections (Eq. 1-2): a block's input concatenates *every* earlier output, those not
  selected multiplied by 0, so the input width (and each weight's shape) is fixed;
* widths (Eq. 3-4): an op's output beyond the chosen width is masked to 0, and its
  LayerNorm normalizes only the kept features; an op masked to width ``d`` therefore
  computes exactly a narrow op of width ``d`` whose weights are the wide op's first rows
  (tested), which is what makes inherited weights meaningful;
* DotProduct is balanced (Sec. 4.2): fields are first compressed to round(sqrt(2 d))
  tokens, so its weights grow linearly with the fields; at width ``d`` only the first
  tokens take part;
* Attention masks the keys of fields beyond the chosen count.

The supernet trains by sampling a path per step (``search``); ``forward(dense, sparse,
path)`` runs any path, the full one included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import per_feature_embeddings
from recsearch.search.nasrec.config import NASRecSpace
from recsearch.search.nasrec.space import Block, Genotype, live_blocks


def dot_tokens(width: int) -> int:
    """Compressed fields of a balanced DotProduct of output ``width``: round(sqrt(2 width))."""
    return max(1, round(math.sqrt(2 * width)))


def _keep(x: torch.Tensor, width: int, dim: int = -1) -> torch.Tensor:
    """``x`` with entries at positions >= ``width`` along ``dim`` set to 0 (Eq. 4)."""
    size = x.shape[dim]
    if width >= size:
        return x
    shape = [1] * x.dim()
    shape[dim] = size
    mask = (torch.arange(size, device=x.device) < width).to(x.dtype).view(shape)
    return x * mask


class MaskedLayerNorm(nn.Module):
    """LayerNorm over the first ``width`` features only; the others are 0.

    Args:
        size: the largest width.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor, width: int) -> torch.Tensor:
        head = F.layer_norm(x[..., :width], (width,), self.weight[:width], self.bias[:width])
        return F.pad(head, (0, x.shape[-1] - width))


class ElasticFC(nn.Module):
    """FC + LayerNorm + ReLU at any width up to ``dense_out`` (NASRec's FC)."""

    def __init__(self, dense_in: int, dense_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dense_in, dense_out, bias=False)
        self.norm = MaskedLayerNorm(dense_out)

    def forward(self, dense: torch.Tensor, width: int) -> torch.Tensor:
        return torch.relu(self.norm(self.fc(dense), width))


class ElasticDot(nn.Module):
    """Balanced DotProduct: fields compressed to round(sqrt(2 d)) tokens plus the projected
    dense vector, pairwise inner products, projected to width ``d`` (NASRec Sec. 4.2)."""

    def __init__(self, dense_in: int, fields_in: int, emb_dim: int, dense_out: int) -> None:
        super().__init__()
        self.tokens = dot_tokens(dense_out)
        self.dense_proj = nn.Linear(dense_in, emb_dim)
        self.compress = nn.Linear(fields_in, self.tokens)
        n = self.tokens + 1
        rows, cols = torch.triu_indices(n, n, offset=1)
        self.register_buffer("upper", rows * n + cols, persistent=False)
        self.out = nn.Linear(n * (n - 1) // 2, dense_out, bias=False)
        self.norm = MaskedLayerNorm(dense_out)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor, width: int) -> torch.Tensor:
        fields_BKE = _keep(self.compress(sparse.transpose(1, 2)), dot_tokens(width)).transpose(1, 2)
        all_BNE = torch.cat([self.dense_proj(dense).unsqueeze(1), fields_BKE], dim=1)
        gram = torch.bmm(all_BNE, all_BNE.transpose(1, 2)).flatten(1)
        return self.norm(self.out(torch.index_select(gram, 1, self.upper)), width)  # type: ignore[arg-type]


class ElasticPair(nn.Module):
    """NASRec's Sum (``gate=False``) or Sigmoid Gating of a left and a right input of the
    same (largest) width, projected to width ``d`` and layer-normalized."""

    def __init__(self, dense_in: int, dense_out: int, gate: bool) -> None:
        super().__init__()
        self.gate = nn.Linear(dense_in, dense_in) if gate else None
        self.proj = nn.Linear(dense_in, dense_out, bias=False)
        self.norm = MaskedLayerNorm(dense_out)

    def forward(self, left: torch.Tensor, right: torch.Tensor, width: int) -> torch.Tensor:
        x = right * torch.sigmoid(self.gate(left)) if self.gate is not None else left + right
        return self.norm(self.proj(x), width)


class ElasticEmbedFC(nn.Module):
    """EmbedFC: fields mixed linearly into ``n`` output fields, each layer-normalized."""

    def __init__(self, fields_in: int, fields_out: int, emb_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(fields_in, fields_out, bias=False)
        self.norm = nn.LayerNorm(emb_dim)

    def forward(self, sparse: torch.Tensor, fields: int) -> torch.Tensor:
        return _keep(self.norm(self.fc(sparse.transpose(1, 2)).transpose(1, 2)), fields, dim=1)


class ElasticAttention(nn.Module):
    """Fields projected to ``n``, then self-attention over them (keys beyond ``n`` masked) and
    a feed-forward part, post-norm (NASRec's Attention; Vaswani et al., 2017)."""

    def __init__(self, fields_in: int, fields_out: int, emb_dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.project = ElasticEmbedFC(fields_in, fields_out, emb_dim)
        self.heads = num_heads
        self.qkv = nn.Linear(emb_dim, 3 * emb_dim)
        self.attn_out = nn.Linear(emb_dim, emb_dim)
        self.norm1 = nn.LayerNorm(emb_dim)
        self.ffn = nn.Sequential(nn.Linear(emb_dim, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, emb_dim))
        self.norm2 = nn.LayerNorm(emb_dim)

    def forward(self, sparse: torch.Tensor, fields: int) -> torch.Tensor:
        x_BNE = self.project(sparse, fields)
        b, n, e = x_BNE.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.qkv(x_BNE).chunk(3, -1))
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(e // self.heads)
        if fields < n:
            scores = scores.masked_fill(torch.arange(n, device=scores.device) >= fields, float("-inf"))
        att = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, n, e)
        x_BNE = self.norm1(x_BNE + self.attn_out(att))
        return _keep(self.norm2(x_BNE + self.ffn(x_BNE)), fields, dim=1)


class ChoiceBlock(nn.Module):
    """Every op of the space at its largest width, the two mergers, and the input assembly.

    Args:
        dense_widths: width of each source's dense output (source 0: the raw dense features).
        source_fields: fields of each source's sparse output (source 0: the embeddings).
        space: the search space.
    """

    def __init__(self, *, dense_widths: list[int], source_fields: list[int], space: NASRecSpace) -> None:
        super().__init__()
        self.dense_widths, self.source_fields = dense_widths, source_fields
        d_in, f_in, e = sum(dense_widths), sum(source_fields), space.emb_dim
        d, n = max(space.dense_dims), max(space.sparse_fields)
        ops: dict[str, nn.Module] = {
            "fc": ElasticFC(d_in, d),
            "dot": ElasticDot(d_in, f_in, e, d),
            "sum": ElasticPair(d_in, d, gate=False),
            "gating": ElasticPair(d_in, d, gate=True),
        }
        self.dense_ops = nn.ModuleDict({k: ops[k] for k in space.dense_ops})
        sparse: dict[str, nn.Module] = {
            "embed_fc": ElasticEmbedFC(f_in, n, e),
            "attention": ElasticAttention(f_in, n, e, space.num_heads, space.ffn_dim),
        }
        self.sparse_ops = nn.ModuleDict({k: sparse[k] for k in space.sparse_ops})
        self.project_fields = space.project_fields if space.project_concat else 0
        if self.project_fields:
            self.project = nn.Linear(d, self.project_fields * e)
            self.project_norm = nn.LayerNorm(e)
        if space.fm_merger:
            self.fm_proj = nn.Linear(e, d, bias=False)
            self.fm_norm = MaskedLayerNorm(d)

    def _dense(self, outputs: list[torch.Tensor], chosen: tuple[int, ...]) -> torch.Tensor:
        return torch.cat([x if j in chosen else x * 0.0 for j, x in enumerate(outputs)], dim=1)

    def forward(
        self, dense_outs: list[torch.Tensor], sparse_outs: list[torch.Tensor], block: Block
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_dense = self._dense(dense_outs, block.dense_in)
        x_sparse = torch.cat([x if j in block.sparse_in else x * 0.0 for j, x in enumerate(sparse_outs)], 1)
        width, fields = block.dense_dim, block.sparse_fields
        parts = []
        for name in block.dense_ops:
            op = self.dense_ops[name]
            if name == "fc":
                parts.append(op(x_dense, width))
            elif name == "dot":
                parts.append(op(x_dense, x_sparse, width))
            else:
                parts.append(
                    op(self._dense(dense_outs, block.left), self._dense(dense_outs, block.right), width)
                )
        if block.fm:
            fm_BE = x_sparse.sum(dim=1).pow(2) - x_sparse.pow(2).sum(dim=1)
            parts.append(self.fm_norm(self.fm_proj(fm_BE), width))
        y = torch.stack(parts).sum(0) if len(parts) > 1 else parts[0]
        sparse_parts = [self.sparse_ops[name](x_sparse, fields) for name in block.sparse_ops]
        y_sparse = torch.stack(sparse_parts).sum(0) if len(sparse_parts) > 1 else sparse_parts[0]
        if self.project_fields:
            pc = self.project_norm(self.project(y).view(y.shape[0], self.project_fields, -1))
            y_sparse = torch.cat([y_sparse, pc if block.project_concat else pc * 0.0], dim=1)
        return y, y_sparse


class Supernet(nn.Module):
    """TorchRec embeddings (capped tables) + N choice blocks + the logit layer.

    Args:
        space: the search space.
        feature_names: sparse features (one table each).
        num_embeddings: rows of each feature's table in the data.
        num_dense: dense features.
        table_cap: rows per table here; ids beyond count as the rare id 1.
    """

    def __init__(
        self,
        *,
        space: NASRecSpace,
        feature_names: list[str],
        num_embeddings: list[int],
        num_dense: int,
        table_cap: int,
    ) -> None:
        super().__init__()
        self.space, self.table_cap = space, table_cap
        e = space.emb_dim
        capped = [min(n, table_cap) for n in num_embeddings]
        self.embeddings = per_feature_embeddings(list(feature_names), capped, e)
        d = max(space.dense_dims)
        block_fields = max(space.sparse_fields) + (space.project_fields if space.project_concat else 0)
        widths, fields = [num_dense], [len(feature_names)]
        blocks = []
        for _ in range(space.num_blocks):
            blocks.append(ChoiceBlock(dense_widths=list(widths), source_fields=list(fields), space=space))
            widths.append(d)
            fields.append(block_fields)
        self.blocks = nn.ModuleList(blocks)
        self.dense_width, self.block_fields = d, block_fields
        self.head = nn.Linear(d + block_fields * e, 1)

    def _capped(self, sparse: KeyedJaggedTensor) -> KeyedJaggedTensor:
        values = sparse.values()
        capped = torch.where(values >= self.table_cap, torch.ones_like(values), values)
        return KeyedJaggedTensor(keys=sparse.keys(), values=capped, lengths=sparse.lengths())

    def features(self, dense: torch.Tensor, sparse: KeyedJaggedTensor, path: Genotype) -> torch.Tensor:
        """The logit layer's input: the last block's dense output and flattened sparse output."""
        dense_outs, sparse_outs = [dense], [self.embeddings(self._capped(sparse))]
        live = live_blocks(path)
        for i, (block, module) in enumerate(zip(path, self.blocks, strict=True), start=1):
            if i in live:
                y, y_sparse = module(dense_outs, sparse_outs, block)
            else:  # no later block reads it: its outputs are only ever multiplied by 0
                y = dense.new_zeros(dense.shape[0], self.dense_width)
                y_sparse = dense.new_zeros(dense.shape[0], self.block_fields, self.space.emb_dim)
            dense_outs.append(y)
            sparse_outs.append(y_sparse)
        return torch.cat([dense_outs[-1], sparse_outs[-1].flatten(1)], dim=1)

    def forward(self, dense: torch.Tensor, sparse: KeyedJaggedTensor, path: Genotype) -> torch.Tensor:
        """Logits (B,) of the subnet ``path`` (``space.full_path`` for the whole supernet)."""
        return self.head(self.features(dense, sparse, path)).squeeze(-1)
