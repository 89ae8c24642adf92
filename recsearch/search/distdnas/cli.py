"""``recsearch discretize``: re-threshold a DistDNAS search (a stage the method adds)."""

from __future__ import annotations

import argparse


def add_discretize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "discretize",
        help="a DistDNAS search result -> architecture JSON (re-threshold)",
        description=(
            "Keep, in each block, every op whose aggregated weight >= --threshold (paper: 0.2 = 1/|ops|, "
            "or 0.25 to prune more; a block where none reaches it keeps its strongest op), optionally "
            "stacked --stack times in parallel, and write the architecture JSON that `recsearch train "
            "--arch` trains and `recsearch export` exports. The search itself already wrote "
            "SEARCH_DIR/arch.json at its configured threshold."
        ),
    )
    p.add_argument("--search", required=True, help="search directory (with aggregate.json)")
    p.add_argument("--threshold", type=float, default=0.2, help="keep ops with weight >= this (default 0.2)")
    p.add_argument("--stack", type=int, default=1, help="parallel copies of the discovered chain (default 1)")
    p.add_argument("--name", default="", help="model name in the JSON (default: distdnas_<mode>)")
    p.add_argument("--out", required=True, help="architecture JSON to write")
    p.set_defaults(func=_run_discretize)


def _run_discretize(a: argparse.Namespace) -> None:
    from recsearch.models.arch import save_arch
    from recsearch.search.distdnas.to_arch import discretize
    from recsearch.utils.fileio import check_out_file

    check_out_file(a.out)
    spec = discretize(a.search, a.threshold, a.stack, a.name)
    save_arch(a.out, spec)
    for i, (d, s) in enumerate(spec["meta"]["choice"], 1):
        print(f"block {i}: dense {' + '.join(d)} | sparse {' + '.join(s)}")
    print(f"{spec['name']}: {len(spec['blocks'])} blocks, stack {a.stack} -> {a.out}")
