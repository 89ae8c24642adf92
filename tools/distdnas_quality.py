"""DistDNAS quality checks: separation, upper bounds of the space, lambda, random baseline.

    python tools/distdnas_quality.py CHECK [--days 5] [--rows-per-day 100000] [--seed 0]
        [--preset tiny] [--work runs/experiments] [-- search overrides (random)]

CHECK: separation (entropy and found NE under warm-up / annealing / arch lr), upper-bounds
(every op kept, DLRM and DCN-v2 written in the space, paper sizes), temperature (lambda's
supernet on the validation day, noise-free), random (3 search seeds vs 5 random archs at
similar FLOPs), rows-per-day (distributed vs one-shot at fixed total rows, split into
days of --per-day rows). A thin front end over ``recsearch.search.distdnas.quality``: fresh data
and run directory under --work; prints a markdown table for docs/results.md.
"""

from __future__ import annotations

import argparse

from recsearch.search.distdnas import quality

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("check", choices=["separation", "upper-bounds", "temperature", "random", "rows-per-day"])
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--rows-per-day", type=int, default=100_000)
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="data seed (and search seed, except random: searches use seeds 0..N-1)",
    )
    p.add_argument("--seeds", type=int, default=3, help="random: search seeds")
    p.add_argument("--preset", default="tiny", help="synth preset")
    p.add_argument("--work", default="runs/experiments")
    p.add_argument(
        "--settings",
        nargs="*",
        help="separation: only these rows (quality.SEPARATION); upper-bounds: rows naming these",
    )
    p.add_argument("--total-rows", type=int, default=200_000, help="rows-per-day: search rows in all")
    p.add_argument("--per-day", type=int, nargs="+", default=[50_000, 100_000], help="rows-per-day: R values")
    p.add_argument(
        "overrides", nargs="*", help="random, rows-per-day: search overrides (on the small preset)"
    )
    a = p.parse_args()
    common = (a.work, a.days, a.rows_per_day)
    if a.check == "separation":
        only = {k: v for k, v in quality.SEPARATION.items() if not a.settings or k in a.settings}
        print(quality.separation(*common, a.seed, a.preset, only))
    elif a.check == "upper-bounds":
        print(quality.upper_bounds(*common, a.seed, a.preset, a.settings))
    elif a.check == "temperature":
        print(quality.temperature(*common, a.seed, a.preset))
    elif a.check == "random":
        print(quality.random_baseline(*common, a.seeds, a.preset, extra=a.overrides, data_seed=a.seed))
    else:
        print(quality.rows_per_day(a.work, a.total_rows, tuple(a.per_day), a.seed, a.preset, a.overrides))
