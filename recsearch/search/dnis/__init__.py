"""DNIS (Cheng, Shen, Huang, "Differentiable Neural Input Search for Recommender Systems").

Each field's ids are cut into frequency blocks (``blocks``); a soft selection layer alpha
(one row of K scales in [0, 1] per (field, block)) multiplies the embeddings before the
base model's interaction and learns on the validation day (``search``, first-order
bilevel, row-normalized gradients); alpha x E is pruned to a compression rate in groups of
4 columns (``prune``) and materialized as real TorchRec tables, one per (field, block) at
its own dim, retrained from scratch.
"""

from recsearch.search.dnis.config import DnisConfig
from recsearch.search.registry import SearchMethod, register_method

register_method(
    SearchMethod(
        name="dnis",
        summary="DNIS: differentiable embedding-dim search per frequency block, pruned to real tables",
        config=DnisConfig,
        entry="recsearch.search.dnis.search:run",
        random_arch="recsearch.search.dnis.prune:random_arch",
        description=(
            "DNIS (Cheng, Shen, Huang). Splits each field's ids into `blocks` frequency blocks (from\n"
            "the counts preprocessing saved), scales each block's K-dim embeddings by a soft selection\n"
            "row alpha in [0, 1] learned on --val-day (weights on --train-days; alpha's gradient\n"
            "normalized per row, Eq. 8), prunes |alpha x E| to the compression rate `cr` (and each rate\n"
            "of `sweep`) in groups of 4 columns, and writes DIR/arch.json: the base model with one\n"
            "TorchRec table per (field, block) at its kept dim, retrained from scratch and scored on\n"
            "--val-day."
        ),
        base_keys=("base_model", "emb_dim"),
    )
)
