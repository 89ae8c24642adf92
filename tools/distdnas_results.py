"""DistDNAS measured: discovered models vs the zoo, cost-aware vs no-cost, per-day vs one-shot.

    python tools/distdnas_results.py [--days 6] [--rows-per-day 100000] [--seed 0] [--work runs/experiments]

A thin front end over ``recsearch.search.distdnas.experiments.results``: days 0..N-3 are
searched (validation day N-2) and trained on, day N-1 is held out; every stage goes through
the CLI in a fresh run directory under --work. Prints markdown for docs/results.md.
"""

from __future__ import annotations

import argparse

from recsearch.search.distdnas.experiments import results

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=6)
    p.add_argument("--rows-per-day", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/experiments")
    a = p.parse_args()
    print(results(a.work, a.days, a.rows_per_day, a.seed))
