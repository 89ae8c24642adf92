"""Evaluate a trained run (unsharded, one process) on a shard day."""

from __future__ import annotations

from typing import Any

import torch

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo
from recsearch.train.checkpoint import load_trained_model
from recsearch.train.loop import evaluate


@torch.no_grad()
def evaluate_run(run_dir: str, data: str, day: int, batch_size: int = 16384) -> dict[str, Any]:
    model, _ = load_trained_model(run_dir)
    info = ShardInfo.load(data)
    info.check_days([day])
    names = info.sparse_names + info.jagged_names
    expected = [(t["feature"], t["num_embeddings"]) for t in model.spec["tables"]]
    if expected != list(zip(names, info.num_embeddings, strict=True)):
        raise ValueError(f"{data} has other features or table sizes than the data {run_dir} was trained on")
    metrics = evaluate(model, ShardBatches(data, [day], batch_size, shuffle=False), what=f"day {day}")
    return {**metrics, "day": day, "rows": info.days[day], "run": run_dir}
