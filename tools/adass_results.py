"""AdaS&S measured: sizes per field vs the planted truth, both modes vs uniform sizes, stability.

    python tools/adass_results.py [--days 5] [--rows-per-day 300000] [--seed 0] [--preset small]
        [--synth-preset small] [--work runs/experiments]
        [--movielens data/movielens100k [--skip-planted]] [-- search overrides]

A thin front end over ``recsearch.search.adass.experiments``: fresh data and run directory
under --work; every stage through the CLI; prints markdown for docs/results.md.
"""

from recsearch.experiments import size_search_main
from recsearch.search.adass.experiments import movielens, results

if __name__ == "__main__":
    size_search_main(__doc__, results, movielens)
