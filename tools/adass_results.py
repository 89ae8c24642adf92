"""AdaS&S measured: sizes per field vs the planted truth, both modes vs uniform sizes, stability.

    python tools/adass_results.py [--days 5] [--rows-per-day 300000] [--seed 0] [--preset small]
        [--synth-preset small] [--work runs/experiments]
        [--movielens data/movielens100k [--skip-planted]] [-- search overrides]

A thin front end over ``recsearch.search.adass.experiments``: fresh data and run directory
under --work; every stage through the CLI; prints markdown for docs/results.md.
"""

from __future__ import annotations

import argparse

from recsearch.search.adass.experiments import movielens, results

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--rows-per-day", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="small", help="search preset")
    p.add_argument("--synth-preset", default="small")
    p.add_argument("--work", default="runs/experiments")
    p.add_argument("--movielens", default="", help="folder of tools/fetch_movielens.sh: also run on it")
    p.add_argument("--skip-planted", action="store_true", help="only MovieLens")
    p.add_argument("overrides", nargs="*", help="search overrides")
    a = p.parse_args()
    if a.movielens:
        print(movielens(a.work, a.movielens, a.seed, a.preset, a.overrides))
    if a.skip_planted:
        raise SystemExit(0)
    print(results(a.work, a.days, a.rows_per_day, a.seed, a.preset, a.synth_preset, a.overrides))
