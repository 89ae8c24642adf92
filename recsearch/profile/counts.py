"""Forward FLOPs per example and parameter counts of an (unsharded) model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor


def param_counts(model: nn.Module) -> dict[str, int]:
    """Dense and embedding parameter counts."""
    emb = sum(
        p.numel() for m in model.modules() if isinstance(m, EmbeddingBagCollection) for p in m.parameters()
    )
    total = sum(p.numel() for p in model.parameters())
    return {"params": total, "embedding_params": emb, "dense_params": total - emb}


def flops_per_example(model: nn.Module, dense: torch.Tensor, sparse: KeyedJaggedTensor) -> float:
    """Forward FLOPs per example, counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Embedding lookups count as 0 FLOPs there (they move bytes, not arithmetic);
    see :func:`lookup_bytes_per_example` for their cost. Runs with autograd on:
    the counter's module tracker fails on parameters expanded under ``no_grad``.
    """
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(dense, sparse)
    model.train(was_training)
    return counter.get_total_flops() / dense.shape[0]


def lookup_bytes_per_example(model: nn.Module, sparse: KeyedJaggedTensor) -> float:
    """Bytes of embedding rows read per example (ids x table dim x element size)."""
    total = 0
    lengths = sparse.length_per_key()
    by_key = dict(zip(sparse.keys(), lengths, strict=True))
    for m in model.modules():
        if isinstance(m, EmbeddingBagCollection):
            for cfg in m.embedding_bag_configs():
                for f in cfg.feature_names:
                    total += by_key.get(f, 0) * cfg.embedding_dim * 4
    return total / sparse.stride()
