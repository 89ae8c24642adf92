"""DistDNAS (Zhang et al., 2023, "DistDNAS: Search Efficient Feature Interactions within 2 Hours").

A differentiable supernet of choice blocks (``supernet``), a FLOPs cost model whose
permutation importances weight a cost regularizer (``cost``), one search job per data
day (``job``) launched through the shared torchx job pool and averaged (``search``,
``aggregate``), and threshold discretization into the shared architecture JSON
(``to_arch``).
"""

from recsearch.search.distdnas.config import DistDNASConfig
from recsearch.search.registry import Flag, SearchMethod, register_method

register_method(
    SearchMethod(
        name="distdnas",
        summary="DistDNAS: per-day differentiable interaction search, cost-aware, averaged, discretized",
        config=DistDNASConfig,
        entry="recsearch.search.distdnas.search:run",
        random_arch="recsearch.search.distdnas.to_arch:random_arch",
        job="recsearch.search.distdnas.job:run_named_job",
        description=(
            "DistDNAS (Zhang et al., 2023). Fits the FLOPs cost model (DIR/cost_table.json + .png),\n"
            "then runs one search job per train day through torchx (at most --workers at a time on a\n"
            "local scheduler); each job trains the supernet with alternating weight and architecture\n"
            "steps on its day and scores it on --val-day. Failed jobs are retried (they resume from\n"
            "their checkpoints); the days' architecture weights are averaged (Eq. 6) into\n"
            "DIR/aggregate.json + aggregate.png and discretized at `threshold` into DIR/arch.json.\n"
            "`recsearch discretize --search DIR` re-thresholds. Rerunning the same command resumes."
        ),
        flags=(
            Flag("--mode", "mode", "search mode: distributed, one-shot, fresh or no-cost (= mode=...)"),
            Flag("--allow-missing", "allow_missing", "aggregate without failed jobs", switch=True),
        ),
        stages=("recsearch.search.distdnas.cli:add_discretize",),
    )
)
