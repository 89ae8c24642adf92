"""DistDNAS: how separated the averaged weights end, with warm-up, annealing, a larger arch step.

    python tools/distdnas_separation.py [--days 5] [--rows-per-day 100000] [--seed 0] [--preset tiny]
        [--work runs/experiments]

A thin front end over ``recsearch.search.distdnas.experiments.separation`` (fresh data and
run directory under --work; the quickstart's data by default). Prints a markdown table.
"""

from __future__ import annotations

import argparse

from recsearch.search.distdnas.experiments import separation

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--rows-per-day", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="tiny", help="synth preset")
    p.add_argument("--work", default="runs/experiments")
    a = p.parse_args()
    print(separation(a.work, a.days, a.rows_per_day, a.seed, a.preset))
