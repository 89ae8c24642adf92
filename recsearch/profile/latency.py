"""Measured forward latency of a model at several batch sizes."""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo
from recsearch.models.builder import build_model
from recsearch.profile.counts import (
    embedding_bytes,
    flops_per_example,
    lookup_bytes_per_example,
    param_counts,
)


@torch.no_grad()
def forward_latency_ms(model: nn.Module, batch: Any, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall-clock milliseconds of one eval-mode forward pass."""
    model.eval()
    for _ in range(warmup):
        model(batch.dense_features, batch.sparse_features)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(batch.dense_features, batch.sparse_features)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def profile_model(
    spec: dict[str, Any], data: str, day: int | None = None, batch_sizes: tuple[int, ...] = (1, 64, 512)
) -> dict[str, Any]:
    """FLOPs and lookup bytes per example, parameter counts and latency per batch size.

    FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts
    embedding lookups as 0; ``lookup_bytes`` reports their memory traffic instead.
    """
    info = ShardInfo.load(data)
    day = min(info.days) if day is None else day
    info.check_days([day])
    model = build_model(
        spec,
        info.sparse_names + info.jagged_names,
        info.num_embeddings,
        len(info.dense_names),
        info.dense_names,
    )
    largest = next(iter(ShardBatches(data, [day], max(batch_sizes), shuffle=False)))
    result: dict[str, Any] = {
        "model": spec.get("name", "model"),
        "flops": flops_per_example(model, largest.dense_features, largest.sparse_features),
        "lookup_bytes": lookup_bytes_per_example(model, largest.sparse_features),
        **param_counts(model),
        "embedding_bytes": embedding_bytes(model),
        "latency_ms": {},
        "threads": torch.get_num_threads(),
    }
    for bs in batch_sizes:
        batch = next(iter(ShardBatches(data, [day], bs, shuffle=False)))
        result["latency_ms"][str(bs)] = forward_latency_ms(model, batch)
    return result
