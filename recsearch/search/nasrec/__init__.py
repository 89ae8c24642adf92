"""NASRec (Zhang et al., "NASRec: Weight Sharing Neural Architecture Search for Recommender
Systems", WWW 2023).

A weight-sharing supernet of densely connected choice blocks with elastic operators
(``supernet``), trained by single-operator any-connection path sampling; regularized
evolution over subnets scored with inherited weights (``evolution``); the best subnets
retrained from scratch through the shared job pool, the best of them as ``arch.json``
(``search``, ``job``, ``to_arch``).
"""

from recsearch.search.nasrec.config import NASRecConfig
from recsearch.search.registry import SearchMethod, register_method

register_method(
    SearchMethod(
        name="nasrec",
        summary="NASRec: weight-sharing supernet, any-connection sampling, regularized evolution, top-k",
        config=NASRecConfig,
        entry="recsearch.search.nasrec.search:run",
        random_arch="recsearch.search.nasrec.to_arch:random_arch",
        job="recsearch.search.nasrec.job:run_named_job",
        description=(
            "NASRec (Zhang et al., WWW 2023). Trains one weight-sharing supernet of N densely connected\n"
            "choice blocks (dense ops FC/DotProduct/Gating/Sum, sparse ops Attention/EmbedFC, elastic\n"
            "widths by masking) on --train-days, one path per step (single-operator, any-connection,\n"
            "the full supernet during a decaying warm-up); searches it by regularized evolution with\n"
            "subnets scored on --val-day with inherited weights (optionally after fine-tuning the last\n"
            "layer); retrains the top_k subnets from scratch through torchx (--workers at a time) and\n"
            "writes the best on --val-day as DIR/arch.json. space.name=small is NASRec-Small. With\n"
            "ranking_subnets=N, N random subnets are also trained alone: Kendall tau, Pearson r."
        ),
    )
)
