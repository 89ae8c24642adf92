"""A short human-readable summary of a shard directory, read through the loader."""

from __future__ import annotations

import numpy as np

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo


def summarize(root: str, days: list[int] | None = None, batch_size: int = 1024, num_batches: int = 4) -> str:
    """Load ``num_batches`` batches and describe the shards and the batches."""
    info = ShardInfo.load(root)
    days = sorted(info.days) if days is None else days
    batches = ShardBatches(root, days, batch_size=batch_size)
    lines = [
        f"shards: {root}  ({len(info.days)} days, {sum(info.days.values()):,} rows, "
        f"{info.manifest.get('skipped_lines', 0)} skipped lines)",
        "rows per day: " + ", ".join(f"{d}: {r:,}" for d, r in sorted(info.days.items())),
        f"tables: {len(info.num_embeddings)}, rows per table min/median/max: "
        f"{min(info.num_embeddings)}/{int(np.median(info.num_embeddings))}/{max(info.num_embeddings)}, "
        f"total embedding rows {sum(info.num_embeddings):,}",
        f"batches of {batch_size} over days {days}: {len(batches)}",
    ]
    for k, batch in enumerate(batches):
        if k == num_batches:
            break
        kjt = batch.sparse_features
        lines.append(
            f"  batch {k}: dense {tuple(batch.dense_features.shape)} mean {batch.dense_features.mean():.3f}, "
            f"KJT {len(kjt.keys())} keys x {kjt.stride()} rows, {kjt.values().numel()} ids "
            f"(max id {int(kjt.values().max())}), CTR {batch.labels.float().mean():.3f}"
        )
    return "\n".join(lines)
