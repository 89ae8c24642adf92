"""DistDNAS design checks behind two defaults: block_norm and dot_compress_fields.

    python tools/distdnas_ablations.py [--days 6] [--rows-per-day 100000] [--work runs/experiments]

A thin front end over ``recsearch.search.distdnas.experiments.ablations`` (fresh data and
run directory under --work). Prints a markdown table for docs/results.md.
"""

from __future__ import annotations

import argparse

from recsearch.search.distdnas.experiments import ablations

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=6)
    p.add_argument("--rows-per-day", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/experiments")
    a = p.parse_args()
    print(ablations(a.work, a.days, a.rows_per_day, a.seed))
