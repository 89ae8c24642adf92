"""Per-day DistDNAS search with K workers vs one-shot on one worker: wall-clock speed-up.

    python tools/bench_search_speedup.py [--days 6] [--rows-per-day 200000] [--workers 2]

A thin front end over ``recsearch.search.distdnas.experiments.search_speedup``: on fresh
`synth --preset small` days (N-2 searched), the one-shot search on one worker
(`--workers 1 --threads-per-job cores/K`) against the per-day search with K workers of
cores/K threads each, both through the CLI in a fresh run directory. Goal: >= 0.9 K.
"""

from __future__ import annotations

import argparse

from recsearch.search.distdnas.experiments import search_speedup

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=6)
    p.add_argument("--rows-per-day", type=int, default=200_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="runs/experiments")
    a = p.parse_args()
    print(search_speedup(a.work, a.days, a.rows_per_day, a.workers, a.seed))
