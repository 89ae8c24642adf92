"""Settings of a PROFIT search (defaults: the paper's, except where noted).

Kept free of torch so ``recsearch --help`` and ``recsearch search ls`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsearch.train.config import BaseConfig, TrainConfig
from recsearch.utils.config import setting

MODES = ("progressive", "one-step", "full-space", "random")


@dataclass
class ProfitConfig(BaseConfig):
    """One PROFIT search: order-by-order bilevel search of low-rank cross weights, then a retrain."""

    mode: str = setting(
        "progressive",
        doc="progressive: the paper's Algorithm 1 (order 1, freeze it, order 2, ...); one-step: every "
        "order's weights at once for the same epochs in all; full-space: one free weight per cross "
        "(AutoFIS-like, progressive; orders <= 3); random: random crosses of the same counts, no search",
        choices=MODES,
    )
    max_order: int = setting(3, doc="highest order O of the crosses searched (paper 3)", ge=1, le=4)
    rank: int = setting(
        4, doc="R, components of the symmetric CP decomposition of each order's weights", ge=1
    )
    top_n: list[int] = setting(
        factory=lambda: [20, 20, 20],
        doc="crosses kept per order N_o (orders 1..O; the last value repeats for higher orders)",
        ge=1,
    )
    search_epochs: list[int] = setting(
        factory=lambda: [1, 1, 1],
        doc="passes over the train days while searching each order E_o (the last value repeats)",
        ge=1,
    )
    emb_dim: int = setting(16, doc="embedding dim d of every field (paper 16); a multiple of 4", ge=4)
    dense_as_fields: bool = setting(
        True,
        doc="the numeric features become fields too (the paper's 39 Criteo fields): each value v "
        "(log1p of the raw integer, as the shards hold it) falls into bucket floor(v^2), capped at "
        "dense_buckets - 1 -- the usual floor(log(x)^2) discretization of Criteo's integers -- and "
        "each bucket has its own embedding; false: they feed the head as they are",
    )
    dense_buckets: int = setting(64, doc="buckets per numeric field (dense_as_fields)", ge=2)
    head_hidden: list[int] = setting(
        factory=lambda: [400, 400, 400], doc="hidden widths of the output MLP (paper 400-400-400)", ge=1
    )
    field_norm: str = setting(
        "coordinate",
        doc="normalize the fields in the search network, batch statistics, no affine: per field "
        "(over the batch and its d coordinates), per coordinate (each of the M x d values over the "
        "batch, as AutoFIS normalizes each cross) or none. Without it a field can grow its "
        "embedding and shrink its weight beta, and ranking crosses by weight says nothing. "
        "Per coordinate measured better on planted data (docs/results.md)",
        choices=("field", "coordinate", "none"),
    )
    arch_lr: float = setting(1e-2, doc="Adam learning rate of the architecture weights beta", gt=0)
    beam: int = setting(
        200_000,
        doc="selection: partial crosses the exact branch-and-bound top-N may expand before it "
        "returns its best so far (recorded as exact: false)",
        ge=1,
    )
    retrain: TrainConfig = setting(
        factory=TrainConfig, doc="recipe of the retrain of the selected crosses from scratch"
    )
    do_retrain: bool = setting(
        True, doc="retrain the selected crosses on the train days and score them on the validation day"
    )
    # the paper's recipe: Adam 1e-3 for the network, batch 4096
    batch_size: int = setting(4096, doc="rows per search step (paper 4096)", ge=1)
    eval_batch_size: int = setting(4096, doc="rows per validation batch", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.emb_dim % 4:
            self.fail(f"emb_dim must be a multiple of 4 (FBGEMM kernels), got {self.emb_dim}")
        if self.mode == "full-space" and self.max_order > 3:
            self.fail(
                f"mode=full-space holds M^o weights per order: use max_order <= 3, got {self.max_order}"
            )
        if not self.top_n or not self.search_epochs:
            self.fail("top_n and search_epochs need at least one value")

    def fields(self, feature_names: list[str], dense_names: list[str]) -> list[str]:
        """The searched fields, in the order of the weights' columns: the categorical
        features, then (``dense_as_fields``) the numeric ones."""
        return list(feature_names) + (list(dense_names) if self.dense_as_fields else [])

    def n_keep(self, order: int) -> int:
        """N_o: crosses kept of ``order`` (1-based)."""
        return self.top_n[min(order, len(self.top_n)) - 1]

    def epochs_of(self, order: int) -> int:
        """E_o: passes while searching ``order`` (1-based)."""
        return self.search_epochs[min(order, len(self.search_epochs)) - 1]
