"""Settings of an AdaS&S search (defaults: the paper's, except where noted).

Kept free of torch so ``recsearch --help`` and ``recsearch search ls`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsearch.train.config import BaseConfig, TrainConfig
from recsearch.utils.config import setting

# the paper's two published modes (Sec. 4.2): (lambda_r, lambda_c)
MODES = {"effect-first": (0.0025, 0.08), "resource-first": (0.005, 0.04)}


@dataclass
class AdassConfig(BaseConfig):
    """One AdaS&S search: a supernet of candidate embedding sizes trained with adaptive
    sampling, a policy searching one size per field, the chosen sizes retrained."""

    base_model: str = setting(
        "deepfm",
        doc="zoo model the embeddings feed (the paper: Wide&Deep, DeepFM), or an arch JSON file "
        "(e.g. an interaction search's arch.json) whose embedding.dim is common_dim",
    )
    base_hidden: list[int] = setting(
        factory=lambda: [128, 64],
        doc="hidden widths of the base model's MLP (paper 128-64; empty: the zoo's)",
        ge=1,
    )
    sizes: list[int] = setting(
        factory=lambda: [4, 8, 16, 32, 64],
        doc="candidate embedding sizes (paper 2, 8, 16, 32, 64; TorchRec tables need multiples of 4, so 4 "
        "stands for 2)",
        ge=4,
    )
    scheme: str = setting(
        "independent",
        doc="independent: a table per (field, size) (the paper's choice for MovieLens); shared: one table "
        "per field at the largest size, a size takes its first columns (Criteo, Avazu)",
        choices=("independent", "shared"),
    )
    common_dim: int = setting(
        32,
        doc="d_f: width every size is transformed to (linear + BatchNorm, one per size) and the "
        "base model interacts at (the paper leaves it open; 32 = its UES-32 reference)",
        ge=4,
    )
    lambda_fs: float = setting(
        0.6, doc="weight of the gradient score against the L1 score in P_F (paper 0.6)", ge=0, le=1
    )
    field_keep: float = setting(
        0.6,
        doc="mean keep rate of a field under feature sampling (the paper's random baseline keeps 0.6)",
        gt=0,
        le=1,
    )
    sample_floor: float = setting(
        0.1,
        doc="share of uniform mixed into the size sampling rates P_E, so every size keeps training",
        ge=0,
        le=1,
    )
    stats_momentum: float = setting(
        0.9, doc="moving average of the sampling scores over steps", ge=0, le=0.999
    )
    mode: str = setting(
        "effect-first",
        doc="effect-first (lambda_r 0.0025, lambda_c 0.08) or resource-first (0.005, 0.04): the paper's "
        "penalty weights, unless lambda_r / lambda_c are set",
        choices=tuple(MODES),
    )
    lambda_r: float = setting(-1.0, doc="resource penalty weight (negative: the mode's)")
    lambda_c: float = setting(-1.0, doc="competition penalty weight (negative: the mode's)")
    resource: str = setting(
        "dims",
        doc="what the resource penalty counts: dims (the paper's Eq. 9: every field's expected size "
        "alike) or rows (each field's expected size weighed by its share of the table rows: "
        "embedding parameters)",
        choices=("dims", "rows"),
    )
    policy_dim: int = setting(32, doc="width of the transformer policy over fields", ge=4)
    policy_layers: int = setting(2, doc="transformer layers of the policy", ge=1)
    policy_lr: float = setting(5e-4, doc="Adam learning rate of the policy (paper 5e-4)", gt=0)
    policy_steps: int = setting(300, doc="policy updates per search (REINFORCE)", ge=1)
    policy_samples: int = setting(8, doc="subnets drawn and rewarded per policy update", ge=1)
    reward_rows: int = setting(8192, doc="validation rows a subnet's reward (AUC) is measured on", ge=64)
    searches: int = setting(
        1,
        doc="policy searches with seeds seed, seed+1, ... on the one supernet (the stability report; "
        "paper 100)",
        ge=1,
    )
    supernet_from: str = setting(
        "",
        doc="a finished AdaS&S search directory whose trained supernet to search again (another mode or "
        "penalty, more searches) instead of training one: the paper's search is decoupled from the "
        "supernet; its supernet settings must match these",
    )
    retrain: TrainConfig = setting(
        factory=TrainConfig, doc="recipe of the retrain of the chosen sizes from scratch"
    )
    do_retrain: bool = setting(True, doc="retrain the chosen sizes on the train days, score on the val day")
    batch_size: int = setting(512, doc="rows per supernet step (paper 512)", ge=1)
    eval_batch_size: int = setting(8192, doc="rows per validation batch", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(s % 4 for s in self.sizes) or self.common_dim % 4:
            self.fail(
                f"sizes and common_dim must be multiples of 4 (FBGEMM), got {self.sizes}, {self.common_dim}"
            )
        if len(set(self.sizes)) != len(self.sizes) or len(self.sizes) < 2:
            self.fail(f"sizes must be at least two distinct sizes, got {self.sizes}")

    def supernet_keys(self) -> dict[str, object]:
        """The settings a trained supernet depends on (``supernet_from`` must match them)."""
        keys = ("base_model", "base_hidden", "sizes", "scheme", "common_dim", "lambda_fs", "field_keep",
                "sample_floor", "stats_momentum", "seed", "batch_size", "epochs", "max_steps")  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    def penalties(self) -> tuple[float, float]:
        """(lambda_r, lambda_c): the set values, else the mode's."""
        r, c = MODES[self.mode]
        return (self.lambda_r if self.lambda_r >= 0 else r, self.lambda_c if self.lambda_c >= 0 else c)
