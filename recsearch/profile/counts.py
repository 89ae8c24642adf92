"""Forward FLOPs per example and parameter counts of an (unsharded) model."""

from __future__ import annotations

from typing import Any

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
    from recsearch.models.blocked import BlockedEmbeddings

    total = 0
    # frequency-blocked tables read the input routed to their blocks' keys
    keyed = [sparse] + [m.route(sparse) for m in model.modules() if isinstance(m, BlockedEmbeddings)]
    by_key = {k: n for kjt in keyed for k, n in zip(kjt.keys(), kjt.length_per_key(), strict=True)}
    for m in model.modules():
        if isinstance(m, EmbeddingBagCollection):
            for cfg in m.embedding_bag_configs():
                for f in cfg.feature_names:
                    total += by_key.get(f, 0) * cfg.embedding_dim * 4
    return total / sparse.stride()


def model_counts(model: nn.Module, data: str, day: int) -> dict[str, Any]:
    """FLOPs and lookup bytes per example (on a batch of ``day``), parameter counts and
    embedding bytes: what ``train`` records and every search reports for its result."""
    from recsearch.data.loader import ShardBatches

    probe = next(iter(ShardBatches(data, [day], 256, shuffle=False)), None)
    if probe is None:
        raise ValueError(f"{data}: day {day} has no rows to measure the model on; pick another day")
    counts: dict[str, Any] = {
        "flops": flops_per_example(model, probe.dense_features, probe.sparse_features),
        "lookup_bytes": lookup_bytes_per_example(model, probe.sparse_features),
        **param_counts(model),
    }
    counts["embedding_bytes"] = embedding_bytes(model)
    return counts


def embedding_bytes(model: nn.Module) -> int:
    """Bytes held by the embedding tables (rows x dim x element size, table by table)."""
    total = 0
    for m in model.modules():
        if isinstance(m, EmbeddingBagCollection):
            total += sum(p.numel() * p.element_size() for p in m.parameters())
    return total


def interaction_flops(
    spec: dict[str, Any],
    num_dense: int,
    num_fields: int,
    emb_dim: int,
    field_names: list[str] | None = None,
    dense_names: list[str] | None = None,
) -> float:
    """Forward FLOPs per example of an architecture's interaction graph (lookups excluded),
    without building its tables: cheap enough to call on every sampled architecture. The
    names are needed only by archs that select fields by name."""
    from recsearch.models.builder import build_interaction

    graph = build_interaction(spec, num_dense, num_fields, emb_dim, field_names, dense_names)
    # with autograd on: the counter's module tracker fails on parameters expanded under no_grad
    with FlopCounterMode(display=False) as counter:
        graph(torch.zeros(2, num_dense), torch.zeros(2, num_fields, emb_dim))
    return counter.get_total_flops() / 2
