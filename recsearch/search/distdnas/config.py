"""Settings of a DistDNAS search (defaults: the paper's, except where noted).

Kept free of torch so ``recsearch --help`` and ``recsearch search ls`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsearch.search.cost import COST_METRICS, latency_model_problem
from recsearch.train.config import BaseConfig
from recsearch.utils.config import Config, setting

MODES = ("distributed", "one-shot", "fresh", "no-cost")


@dataclass
class SpaceConfig(Config):
    """Shape of the search space (paper: 7 blocks, dim_d 256/512, N_s 16, dim_s 16)."""

    num_blocks: int = setting(7, doc="choice blocks N", ge=1)
    dense_dim: int = setting(256, doc="width of each block's dense output (dim_d)", ge=1)
    sparse_fields: int = setting(16, doc="fields of each block's sparse output (N_s)", ge=1)
    emb_dim: int = setting(
        16, doc="embedding dim, also each sparse output field's width (dim_s); a multiple of 4", ge=4
    )
    head_hidden: list[int] = setting(factory=lambda: [256], doc="hidden widths of the output MLP", ge=1)
    dot_compress_fields: int = setting(
        0,
        doc="DotProduct first compresses its input fields to this many with EmbedFC (NASRec's "
        "operator balancing); 0: products of all input fields. On synth small, compressing block "
        "1's 27 fields to 16 cost a fixed DotProduct+Linear chain 0.015 NE without block_norm",
        ge=0,
    )
    crossnet_layers: int = setting(
        1, doc="cross layers of the CrossNet op (and of PIN, see pin_layers)", ge=1
    )
    first_crossnet_layers: int = setting(
        0,
        doc="cross layers of block 1's CrossNet and PIN, whose input is the raw features x0 (dense "
        "features and every embedding): 7 is DCN-v2's anchored cross stack, so the space holds "
        "DCN-v2 (block 1 CrossNet, Linear blocks after it); 0: crossnet_layers",
        ge=0,
    )
    pin_layers: int = setting(
        0,
        doc="layers of the PIN op; 0: as many as CrossNet's in the same block, so the two gated "
        "dense ops compete at equal depth (before 2026-12-02 PIN had 2 layers, CrossNet 1)",
        ge=0,
    )
    op_norm: bool = setting(
        False,
        doc="normalize each op's output (layer norm without affine; per field for sparse ops) "
        "before mixing, and each kept op's output before summing in a discrete architecture, so "
        "an op's architecture gradient does not scale with its output's magnitude",
    )
    shared_merger: bool = setting(
        True,
        doc="a discrete architecture maps each dense input of a block to one sparse field once per "
        "block (as the supernet does) and only for ops that read the sparse input; false: every "
        "kept op gets its own dense-to-sparse merger (before 2026-12-02)",
    )
    block_norm: bool = setting(
        True,
        doc="layer-normalize each block's dense output and each field of its sparse output (after "
        "mixing; in a discrete architecture, after summing the kept ops), so products of products "
        "stay bounded: a discovered 5-block architecture trained to NE 0.770 with it, 0.777 "
        "without (synth small, docs/results.md)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.emb_dim % 4:
            self.fail(f"emb_dim must be a multiple of 4 (FBGEMM kernels), got {self.emb_dim}")

    def check(self) -> None:
        """Kept for callers that validated explicitly; validation now runs on creation."""
        self.__post_init__()


@dataclass
class DistDNASConfig(BaseConfig):
    """One DistDNAS search: per-day jobs, averaged, discretized into ``arch.json``."""

    space: SpaceConfig = setting(factory=SpaceConfig, doc="the search space")
    mode: str = setting(
        "distributed",
        doc="distributed: one job per train day, averaged (the paper); one-shot: one job over all "
        "train days in order; fresh: the last train day only; no-cost: distributed without the "
        "cost regularizer (the paper's Table II ablations)",
        choices=MODES,
    )
    temperature: float = setting(
        5.0,
        doc="Gumbel-softmax temperature lambda. Default 5: on synth small (100k-row days, batch 512) "
        "the supernet's held-out AUC within a day reached 0.75 at 5 but 0.59 at 1. Reported and "
        "discretized weights are softmax(alpha / lambda): raise arch_lr with lambda",
        gt=0,
    )
    temperature_end: float = setting(
        0.0,
        doc="anneal lambda geometrically from temperature to this over each job's steps, so the "
        "mixing weights separate as the supernet learns; reported weights use the final lambda "
        "(0: constant temperature)",
        ge=0,
    )
    arch_warmup: float = setting(
        0.0,
        doc="fraction of each job's steps that train the supernet's weights with alpha, beta frozen "
        "before architecture steps begin (DARTS-style warm-up; 0: from step 0; at most 0.9)",
        ge=0,
        le=0.9,
    )
    arch_lr: float = setting(3e-3, doc="Adam learning rate of alpha and beta (betas 0.5, 0.999)", gt=0)
    cost_gamma: float = setting(0.004, doc="gamma of the cost regularizer (paper 0.004); 0: off", ge=0)
    cost_samples: int = setting(128, doc="architectures sampled to fit the cost model", ge=8)
    cost_metric: str = setting(
        "flops",
        doc="cost of a sampled architecture: counted FLOPs, or latency on this machine predicted by "
        "a model fitted on measured per-op latency (see latency_model)",
        choices=COST_METRICS,
    )
    latency_model: str = setting(
        "", doc="cost_metric=latency: a latency model from `recsearch profile --fit-latency` (empty: fit "
        "one on architectures of this space, measured on this machine)",
    )  # fmt: skip
    cost_by_block: bool = setting(
        True,
        doc="block 1's ops get cost weights of their own (it reads the raw features; the paper's "
        "Sec. III-C: costs unique in block 1, identical in the others); false: one weight per op "
        "for every block (before 2026-12-02)",
    )
    threshold: float = setting(
        0.2, doc="discretization: keep ops with averaged weight >= this (paper 0.2 = 1/|ops|)", gt=0, le=1
    )
    stack: int = setting(1, doc="parallel copies of the discovered chain in arch.json (paper M = 2..4)", ge=1)
    allow_missing: bool = setting(False, doc="aggregate even if some jobs have no result")
    average: str = setting(
        "weights",
        doc="Eq. 6: weights averages each job's mixing weights softmax(alpha_t / lambda) (the paper); "
        "logits averages alpha_t, then softmax (recsearch before 2026-12-02)",
        choices=("weights", "logits"),
    )
    day_seeds: bool = setting(
        True,
        doc="seed each job from (seed, its days): its own initialization, shuffling and Gumbel noise, "
        "so averaging days cancels noise; false: every job uses seed itself (before 2026-12-02)",
    )
    # the paper's batch; weight and architecture steps alternate on consecutive batches
    batch_size: int = setting(8192, doc="rows per step (paper 8192)", ge=1)
    checkpoint_every: int = setting(200, doc="weight steps between a job's checkpoints", ge=0)
    eval_batch_size: int = setting(
        2048,
        doc="rows per validation batch: the supernet runs every op at once, so its activations at "
        "16,384 rows were the largest part of a job's memory (peak 1.13 GiB vs 0.63 GiB at 2,048 "
        "on a 100k-row day, tools/bench_search_memory.py); the peak does not grow with the day",
        ge=1,
    )
    log_every: int = setting(10, doc="weight steps between recorded mixing weights", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        problem = latency_model_problem(self.latency_model)
        if problem:
            self.fail(problem)
