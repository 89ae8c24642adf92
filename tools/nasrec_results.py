"""NASRec measured: the discovered model vs DLRM, DCN-v2 and DeepFM, and the ranking quality.

    python tools/nasrec_results.py [--days 5] [--rows-per-day 300000] [--seed 0] [--preset small]
        [--movielens data/movielens100k] [--work runs/experiments] [key=value ...]
    python tools/nasrec_results.py --norm-ablation SEARCH_DIR [--work runs/experiments]

A thin front end over ``recsearch.search.nasrec.experiments.results``: days 0..N-3 are
searched (validation day N-2) and trained on, day N-1 is held out; every stage goes through
the CLI in a fresh run directory under --work. ``key=value`` overrides go to the search.
Prints markdown for docs/results.md.
"""

from __future__ import annotations

import argparse

from recsearch.search.nasrec.experiments import norm_ablation, results

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--rows-per-day", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="small")
    p.add_argument("--movielens", default="", help="folder of tools/fetch_movielens.sh (skipped if empty)")
    p.add_argument("--work", default="runs/experiments")
    p.add_argument(
        "--norm-ablation",
        metavar="SEARCH_DIR",
        default="",
        help="instead: train the two best subnets of a finished search with and without the "
        "per-block LayerNorm (space.standalone_norm), evaluated on the day after its validation day",
    )
    p.add_argument("overrides", nargs="*", help="key=value settings of the search")
    a = p.parse_args()
    if a.norm_ablation:
        print(norm_ablation(a.work, a.norm_ablation))
    else:
        print(results(a.work, a.days, a.rows_per_day, a.seed, a.preset, a.movielens, a.overrides))
