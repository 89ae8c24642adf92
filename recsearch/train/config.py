"""Trainer configuration."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Settings of one training run (defaults: DistDNAS's optimizers).

    Attributes:
        batch_size: rows per step per rank.
        eval_batch_size: rows per evaluation batch per rank.
        emb_optimizer: embedding optimizer, fused and applied in backward (adagrad, sgd, adam).
        emb_lr: embedding learning rate.
        dense_lr: Adam learning rate of the dense parameters.
        warmup_steps: linear learning-rate warm-up steps (both optimizers).
        seed: parameter initialization and shuffling seed.
        shuffle: shuffle rows within each day.
        sharding_types: sharding types the planner may choose (fused kernels only).
        max_steps: stop after this many steps (0: one full pass over the train days).
        log_every: steps between TensorBoard scalars.
        checkpoint_every: steps between checkpoints (0: only at the end).
        baseline_run: a run directory whose NE is the reference for ``relative_ne``.
    """

    batch_size: int = 4096
    eval_batch_size: int = 16384
    emb_optimizer: str = "adagrad"
    emb_lr: float = 0.04
    dense_lr: float = 1e-3
    warmup_steps: int = 100
    seed: int = 0
    shuffle: bool = True
    sharding_types: list[str] = field(
        default_factory=lambda: ["table_wise", "column_wise", "table_column_wise"]
    )
    max_steps: int = 0
    log_every: int = 50
    checkpoint_every: int = 0
    baseline_run: str = ""
