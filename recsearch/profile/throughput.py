"""Training throughput: steps of the shared training loop, timed (for benchmarks).

What ``recsearch train`` consumes per second is measured on the same loop it runs:
planner + DMP, the fused in-backward embedding optimizer, Adam for the rest.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from torch import nn

from recsearch.dist.env import init_distributed
from recsearch.train.config import TrainConfig
from recsearch.train.loop import LoopHooks, TrainLoop


def train_step_fn(
    model: nn.Module, config: TrainConfig | None = None, hooks: LoopHooks | None = None
) -> Callable[[Any], None]:
    """One training step of ``model`` on a batch, as ``recsearch train`` takes it (no warm-up)."""
    loop = TrainLoop(
        model=model,
        config=config or TrainConfig(warmup_steps=0),
        env=init_distributed(),
        run_dir=tempfile.mkdtemp(prefix="throughput_"),
        meta={},
        hooks=hooks,
        progress=False,
    )
    steps = iter(range(1 << 62))

    def step(batch: Any) -> None:
        loop.train_step(next(steps), [batch])

    return step


def samples_per_s(step: Callable[[Any], None], batches: list[Any], steps: int, warmup: int = 5) -> float:
    """Training samples per second of ``step`` over ``steps`` steps (after ``warmup``)."""
    for b in batches[:warmup]:
        step(b)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    return steps * len(batches[0].labels) / (time.perf_counter() - start)
