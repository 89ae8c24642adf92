"""Job configs: the settings training and every search share, and training's own."""

from __future__ import annotations

from dataclasses import dataclass

from recsearch.utils.config import Config, setting

EMB_OPTIMIZERS = ("adagrad", "sgd", "adam")
DENSE_OPTIMIZERS = ("adam", "adagrad", "sgd")
# TorchRec sharding types with a fused (in-backward optimizer) kernel; which of them a device
# offers is checked when the model is sharded (recsearch.dist.sharding)
SHARDING_TYPES = ("table_wise", "column_wise", "table_column_wise", "row_wise", "table_row_wise")
CPU_SHARDING = ["table_wise", "column_wise", "table_column_wise"]


@dataclass
class BaseConfig(Config):
    """What a training run and a supernet's training loop have in common (recsearch.train.loop)."""

    batch_size: int = setting(4096, doc="rows per step per rank", ge=1)
    eval_batch_size: int = setting(16384, doc="rows per evaluation batch per rank", ge=1)
    emb_optimizer: str = setting(
        "adagrad", doc="embedding optimizer, fused and applied in backward", choices=EMB_OPTIMIZERS
    )
    emb_lr: float = setting(0.04, doc="embedding learning rate", gt=0)
    dense_optimizer: str = setting("adam", doc="optimizer of the dense parameters", choices=DENSE_OPTIMIZERS)
    dense_lr: float = setting(1e-3, doc="learning rate of the dense parameters", gt=0)
    warmup_steps: int = setting(100, doc="linear learning-rate warm-up steps (both optimizers)", ge=0)
    warmup_max_fraction: float = setting(
        0.25,
        doc="the warm-up never takes more than this fraction of the run's steps (a short run "
        "would otherwise train mostly at a reduced learning rate)",
        gt=0,
        le=1,
    )
    lr_decay: str = setting(
        "none",
        doc="after the warm-up: constant (none) or cosine decay to 0 at the last step",
        choices=("none", "cosine"),
    )
    grad_clip: float = setting(
        0.0,
        doc="clip the global norm of the dense gradients to this (0: off; the fused "
        "embedding update happens in backward and is not clipped)",
        ge=0,
    )
    epochs: int = setting(1, doc="passes over the train days (rows reshuffled each pass)", ge=1)
    patience: int = setting(
        1,
        doc="with epochs > 1 and a validation day: stop after this many epochs without a lower "
        "validation logloss, and keep the best epoch's weights",
        ge=1,
    )
    max_steps: int = setting(0, doc="stop after this many steps in all (0: every epoch in full)", ge=0)
    checkpoint_every: int = setting(
        1000,
        doc="steps between checkpoints (0: only at epoch ends); a killed run resumes from the last",
        ge=0,
    )
    log_every: int = setting(50, doc="steps between logged scalars (TensorBoard, progress bar)", ge=1)
    seed: int = setting(0, doc="parameter initialization and shuffling seed")
    sharding_types: list[str] = setting(
        factory=lambda: list(CPU_SHARDING),
        doc="sharding types the planner may choose; only fused-kernel types, so every table trains "
        "with the embedding optimizer",
        choices=SHARDING_TYPES,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sharding_types:
            self.fail("sharding_types needs at least one sharding type")


@dataclass
class TrainConfig(BaseConfig):
    """One training run of a zoo model or an architecture JSON (``recsearch train``)."""

    shuffle: bool = setting(True, doc="shuffle rows within each day")
    baseline_run: str = setting("", doc="a run directory whose NE is the reference for relative_ne")
