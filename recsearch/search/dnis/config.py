"""Settings of a DNIS search (defaults: the paper's, except where noted).

Kept free of torch so ``recsearch --help`` and ``recsearch search ls`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsearch.train.config import BaseConfig, TrainConfig
from recsearch.utils.config import setting


@dataclass
class DnisConfig(BaseConfig):
    """One DNIS search: a soft selection layer over frequency blocks, pruned to a compression
    rate, materialized as one TorchRec table per (field, block) and retrained."""

    base_model: str = setting(
        "deepfm",
        doc="zoo model whose interaction the embeddings feed (the paper's CTR models: FM, "
        "Wide&Deep, DeepFM), or an arch JSON file (e.g. an interaction search's arch.json) whose "
        "embedding.dim is emb_dim; it interacts at emb_dim",
    )
    base_hidden: list[int] = setting(
        factory=list, doc="hidden widths of the base model's MLP (empty: the zoo's)", ge=1
    )
    emb_dim: int = setting(64, doc="K, the base (largest) embedding dim (paper 64); a multiple of 4", ge=4)
    blocks: int = setting(
        6,
        doc="L, frequency blocks per field (paper: 6 for Criteo, 10 for MovieLens): block 0 holds "
        "the reserved ids (0 missing, 1 rare), blocks 1..L-1 the value ids by descending frequency",
        ge=2,
    )
    block_bounds: list[float] = setting(
        factory=list,
        doc="where the value blocks end, as cumulative shares of the value occurrences (L-2 "
        "increasing numbers in (0, 1)); empty: equal shares, so each block holds as many "
        "occurrences as the next (the paper does not say how it cuts)",
        gt=0,
        le=0.999999,
    )
    arch_lr: float = setting(
        1e-2, doc="Adam learning rate of the soft selection layer alpha (paper 1e-2)", gt=0
    )
    grad_norm: bool = setting(
        True,
        doc="normalize alpha's gradient per row (block) by its mean absolute value (the paper's Eq. 8), "
        "so rare blocks learn at the rate frequent ones do",
    )
    alpha_l1: float = setting(
        0.0,
        doc="L1 pull on alpha added to its (normalized) gradient: a column no validation gradient "
        "holds up drifts to 0 (not in the paper, which has no sparsity term: 0)",
        ge=0,
    )
    init: str = setting(
        "table",
        doc="scale the search's tables start at: table, each feature's own U(+-1/sqrt(its rows)) "
        "(TorchRec's); shared, one U(+-1/sqrt(all rows)) for every table, as the paper's single "
        "embedding matrix (the authors' code: one Xavier-initialized table for all features). "
        "The pruning rule compares |alpha x E| across tables, so per-table scales favour small tables",
        choices=("table", "shared"),
    )
    cr: float = setting(
        20.0,
        doc="compression rate of the result: (F x K x rows) / kept embedding parameters (paper: 20 "
        "and 30 on Criteo, 2-2.5 on MovieLens)",
        ge=1,
    )
    prune_unit: int = setting(
        4,
        doc="columns kept or pruned together: TorchRec tables need dims in multiples of 4, so a "
        "block keeps its best 4, 8, ... columns by mean |alpha x embedding|",
        ge=4,
    )
    materialize: str = setting(
        "block",
        doc="block: one table per (field, block) at its own dim; field: one table per field at the "
        "dims its blocks' columns would hold on average (fewer tables, coarser)",
        choices=("block", "field"),
    )
    sweep: list[float] = setting(
        factory=list,
        doc="more compression rates to prune the same search to and retrain (the AUC/logloss vs "
        "embedding parameters curve); cr is always one",
        ge=1,
    )
    retrain: TrainConfig = setting(
        factory=TrainConfig, doc="recipe of the retrain of each pruned model from scratch"
    )
    do_retrain: bool = setting(
        True, doc="retrain the pruned model(s) on the train days, score on the val day"
    )
    # the paper's recipe: Adam 1e-3 for every weight, batch 4096
    batch_size: int = setting(4096, doc="rows per search step (paper 4096)", ge=1)
    eval_batch_size: int = setting(4096, doc="rows per validation batch", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.emb_dim % 4 or self.prune_unit % 4:
            self.fail(
                f"emb_dim and prune_unit must be multiples of 4 (FBGEMM), "
                f"got {self.emb_dim}, {self.prune_unit}"
            )
        if self.emb_dim % self.prune_unit:
            self.fail(f"prune_unit ({self.prune_unit}) must divide emb_dim ({self.emb_dim})")
        bounds = self.block_bounds
        if bounds and (
            len(bounds) != self.blocks - 2 or any(a >= b for a, b in zip(bounds, bounds[1:], strict=False))
        ):
            self.fail(
                f"block_bounds must be {self.blocks - 2} increasing shares for "
                f"blocks={self.blocks}, got {bounds}"
            )

    def compression_rates(self) -> list[float]:
        """cr, then the sweep's other rates, each once, in increasing order after cr."""
        return [self.cr] + sorted({r for r in self.sweep if r != self.cr})
