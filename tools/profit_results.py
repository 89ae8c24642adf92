"""PROFIT measured on planted data: recovery of the planted crosses and the found models vs the zoo.

    python tools/profit_results.py [--days 5] [--rows-per-day 300000] [--seed 0] [--preset small]
        [--synth-preset small] [--modes progressive one-step random] [--work runs/experiments]
        [--movielens data/movielens100k [--skip-planted]] [-- search overrides]
    python tools/profit_results.py --score SEARCH_DIR RAW_DIR   # recovery of a finished search

A thin front end over ``recsearch.search.profit.experiments.results``: fresh data and run
directory under --work; every stage through the CLI; prints markdown for docs/results.md.
"""

from __future__ import annotations

from recsearch.experiments import results_arguments
from recsearch.search.profit.experiments import movielens, results, score

if __name__ == "__main__":
    p = results_arguments(__doc__)
    p.add_argument("--modes", nargs="+", default=["progressive", "one-step", "random"])
    what = "only score a finished search against the crosses synth planted in RAW_DIR"
    p.add_argument("--score", nargs=2, metavar=("SEARCH_DIR", "RAW_DIR"), help=what)
    p.add_argument("overrides", nargs="*", help="search overrides")
    a = p.parse_args()
    if a.score:
        print(score(*a.score))
        raise SystemExit(0)
    if a.movielens:
        print(movielens(a.work, a.movielens, a.seed, a.preset, a.overrides))
    if a.skip_planted:
        raise SystemExit(0)
    print(
        results(a.work, a.days, a.rows_per_day, a.seed, a.preset, a.synth_preset, tuple(a.modes), a.overrides)
    )
