"""Train every zoo model on planted data and on MovieLens-100K; print the markdown table.

    python tools/zoo_results.py [--rows-per-day 100000] [--days 4] [--work runs/experiments]

A thin front end over ``recsearch.experiments.zoo_results`` (a fresh run directory under
--work; every figure names it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recsearch.experiments import zoo_results

REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows-per-day", type=int, default=100_000)
    p.add_argument("--days", type=int, default=4)
    p.add_argument("--work", default="runs/experiments")
    p.add_argument("--movielens", default=str(REPO / "data" / "movielens100k"))
    a = p.parse_args()
    print(zoo_results(a.work, a.rows_per_day, a.days, a.movielens))
