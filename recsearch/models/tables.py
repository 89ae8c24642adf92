"""One TorchRec table spec, as every model and supernet here declares its tables."""

from __future__ import annotations

from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType


def sum_table(key: str, rows: int, dim: int, init_bound: float | None = None) -> EmbeddingBagConfig:
    """Table ``t_<key>`` read by feature ``key``, sum pooling; initialized U(-b, b) with
    ``init_bound`` b (default TorchRec's: 1/sqrt(rows))."""
    bounds = {} if init_bound is None else {"weight_init_min": -init_bound, "weight_init_max": init_bound}
    return EmbeddingBagConfig(
        name=f"t_{key}",
        embedding_dim=dim,
        num_embeddings=rows,
        feature_names=[key],
        pooling=PoolingType.SUM,
        **bounds,
    )
