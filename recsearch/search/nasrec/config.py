"""Settings of a NASRec search (defaults: the paper's NASRec-Full on Criteo, except where noted).

Kept free of torch so ``recsearch --help`` and ``recsearch search ls`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsearch.search.cost import COST_METRICS, latency_model_problem
from recsearch.train.config import BaseConfig, TrainConfig
from recsearch.utils.config import Config, setting

SPACES = {  # the op choices of each published space (NASRec Sec. 3.2)
    "full": (("fc", "dot", "gating", "sum"), ("attention", "embed_fc")),
    "small": (("fc", "dot"), ("embed_fc",)),
}


@dataclass
class NASRecSpace(Config):
    """The search space: N densely connected choice blocks of elastic operators."""

    name: str = setting(
        "full", doc="full: dense FC/DotProduct/Gating/Sum, sparse Attention/EmbedFC; small: FC/DotProduct, "
        "EmbedFC (the paper's NASRec-Full and NASRec-Small)", choices=tuple(SPACES),
    )  # fmt: skip
    num_blocks: int = setting(7, doc="choice blocks N", ge=1)
    dense_dims: list[int] = setting(
        factory=lambda: [32, 64, 128, 256, 512], doc="output widths a dense op may take", ge=1
    )
    sparse_fields: list[int] = setting(
        factory=lambda: [16, 32, 64], doc="output fields N_s a sparse op may take", ge=1
    )
    max_connections: int = setting(
        4, doc="incoming connections per input set at most (sampled as 1 + Binomial(min(n-1, max-1), 0.5))",
        ge=1,
    )  # fmt: skip
    project_concat: bool = setting(
        True, doc="offer Project-Concat: a block's dense output joins its sparse output as extra fields"
    )
    project_fields: int = setting(8, doc="fields Project-Concat adds (the released code's 8)", ge=1)
    fm_merger: bool = setting(
        True, doc="offer the FM merger: an FM term of a block's sparse input added to its dense output "
        "(the released code's deep_fm)",
    )  # fmt: skip
    standalone_norm: bool = setting(
        True, doc="keep the supernet's LayerNorm after each block's dense and sparse outputs in the "
        "stand-alone models (arch.json; measured better, docs/results.md); false: as the released code",
    )  # fmt: skip
    emb_dim: int = setting(16, doc="embedding dim (every sparse field's width); a multiple of 4", ge=4)
    num_heads: int = setting(2, doc="attention heads of the Attention op (divides emb_dim)", ge=1)
    ffn_dim: int = setting(64, doc="hidden width of the Attention op's feed-forward part", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.emb_dim % 4:
            self.fail(f"emb_dim must be a multiple of 4 (FBGEMM kernels), got {self.emb_dim}")
        if self.emb_dim % self.num_heads:
            self.fail(f"num_heads={self.num_heads} must divide emb_dim={self.emb_dim}")
        self.dense_dims = sorted(set(self.dense_dims))
        self.sparse_fields = sorted(set(self.sparse_fields))

    @property
    def dense_ops(self) -> tuple[str, ...]:
        return SPACES[self.name][0]

    @property
    def sparse_ops(self) -> tuple[str, ...]:
        return SPACES[self.name][1]


@dataclass
class NASRecConfig(BaseConfig):
    """One NASRec search: supernet training, regularized evolution, top-k retraining."""

    space: NASRecSpace = setting(factory=NASRecSpace, doc="the search space")
    table_cap: int = setting(
        500_000, doc="rows per embedding table in the supernet (larger ids count as the rare id; paper 0.5M)",
        ge=3,
    )  # fmt: skip
    full_path_fraction: float = setting(
        0.25, doc="supernet warm-up: for this fraction of the steps the full supernet is trained with a "
        "probability decaying linearly from 1 to 0 (paper: the first quarter)", ge=0, le=1,
    )  # fmt: skip
    eval_batches: int = setting(
        20,
        doc="batches of eval_batch_size of the validation day that score a subnet (0: the whole day)",
        ge=0,
    )
    finetune_steps: int = setting(
        0, doc="post-training fine-tuning of the last layer of each subnet before it is scored, in steps on "
        "the train days (0: off; paper 500)", ge=0,
    )  # fmt: skip
    finetune_lr: float = setting(0.04, doc="Adagrad learning rate of the fine-tuning", gt=0)
    population: int = setting(64, doc="regularized evolution: population size", ge=2)
    sample_size: int = setting(32, doc="candidates drawn from the population to pick a parent", ge=1)
    children: int = setting(16, doc="children per round", ge=1)
    rounds: int = setting(100, doc="rounds of evolution", ge=0)
    mutations_start: int = setting(5, doc="mutations per child in the first rounds (decays to 1)", ge=1)
    mutations_decay_every: int = setting(20, doc="rounds between one-step decays of the mutation count", ge=1)
    max_flops: float = setting(
        0.0, doc="FLOPs budget per example of a subnet's interaction graph (0: none)", ge=0
    )
    cost_metric: str = setting(
        "flops", doc="what the budget limits: counted FLOPs (max_flops), or latency on this machine "
        "predicted by a model fitted on measured per-op latency (max_latency_ms)", choices=COST_METRICS,
    )  # fmt: skip
    max_latency_ms: float = setting(
        0.0, doc="cost_metric=latency: budget of a subnet's interaction graph, in predicted ms per batch of "
        "512 (0: none)", ge=0,
    )  # fmt: skip
    latency_model: str = setting(
        "", doc="cost_metric=latency: a latency model from `recsearch profile --fit-latency` (empty: fit "
        "one on subnets of this space, measured on this machine)",
    )  # fmt: skip
    flops_policy: str = setting(
        "reject", doc="over the budget: reject (never enters the population) or penalize the fitness",
        choices=("reject", "penalize"),
    )  # fmt: skip
    flops_penalty: float = setting(0.01, doc="penalize: logloss added per unit of (cost / budget - 1)", ge=0)
    top_k: int = setting(15, doc="best subnets retrained from scratch; the best on the val day wins", ge=1)
    retrain: TrainConfig = setting(factory=TrainConfig, doc="training recipe of the top-k (and ranking) runs")
    ranking_subnets: int = setting(
        0, doc="random subnets trained stand-alone to measure the supernet's ranking (Kendall tau, "
        "Pearson r; 0: off; paper 100)", ge=0,
    )  # fmt: skip
    ranking_train_steps: int = setting(
        0, doc="steps of each stand-alone ranking run (0: the retrain recipe's budget)", ge=0
    )
    # the paper's supernet recipe: Adagrad 0.04, cosine decay, batch 256, one epoch
    batch_size: int = setting(256, doc="rows per supernet step (paper 256)", ge=1)
    dense_optimizer: str = setting(
        "adagrad", doc="optimizer of the supernet's dense parameters (paper: Adagrad for all)",
        choices=("adam", "adagrad", "sgd"),
    )  # fmt: skip
    dense_lr: float = setting(0.04, doc="learning rate of the supernet's dense parameters (paper 0.04)", gt=0)
    lr_decay: str = setting("cosine", doc="learning-rate decay after the warm-up", choices=("none", "cosine"))
    grad_clip: float = setting(
        5.0, doc="clip the global norm of the dense gradients (released code: 5)", ge=0
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sample_size > self.population:
            self.fail(f"sample_size {self.sample_size} exceeds population {self.population}")
        problem = latency_model_problem(self.latency_model)
        if problem:
            self.fail(problem)
