"""``recsearch search ls`` and ``recsearch search <method>``, built from the method registry.

No method is named here: every registered method gets the same contract flags, its
config keys in ``--help``, its presets, and the flags and extra stages it declares.
"""

from __future__ import annotations

import argparse
from typing import Any

from recsearch.dist.launch_cli import add_launch_arguments, launch_options
from recsearch.search.registry import SearchMethod, get_method, list_methods, resolve
from recsearch.utils.config import add_config_arguments, config_help

CONTRACT = """\
Every method writes DIR/arch.json (train it with `recsearch train --arch DIR/arch.json`),
DIR/search.json (config, seed, wall time per phase, FLOPs and parameters of the result, the
method's findings) and DIR/report.md with PNG plots. --val-day is the held-out day the method
scores architectures on; it must not be a train day. Rerunning the same command resumes.
Config values come from the defaults, then --preset, then --config, then key=value overrides."""


def add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help=f"architecture search: {', '.join(list_methods())} (`search ls` lists them)",
        description="Run an architecture search method, or list them (`recsearch search ls`).\n\n" + CONTRACT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    methods = p.add_subparsers(dest="method", metavar="<method>", required=True)
    ls = methods.add_parser("ls", help="list the search methods, their summaries and presets")
    ls.set_defaults(func=_run_ls)
    for name in list_methods():
        _add_method(methods, get_method(name))


def add_method_stages(sub: argparse._SubParsersAction) -> None:
    """Top-level stages that methods add (e.g. a re-thresholding command)."""
    for name in list_methods():
        for stage in get_method(name).stages:
            resolve(stage)(sub)


def _add_method(methods: argparse._SubParsersAction, m: SearchMethod) -> None:
    p = methods.add_parser(
        m.name,
        help=m.summary,
        description=f"{m.description}\n\n{CONTRACT}",
        epilog=f"config keys (YAML file or key=value; section.key=value):\n{config_help(m.config)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="shard directory (recsearch preprocess / convert)")
    p.add_argument(
        "--train-days", "--days", dest="train_days", required=True, help="days to train on, e.g. 0-3"
    )
    p.add_argument("--val-day", type=int, required=True, help="held-out day for architecture decisions")
    p.add_argument("--out", required=True, help="search directory (arch.json, search.json, report.md)")
    p.add_argument("--restart", action="store_true", help="delete DIR's earlier search and start over")
    add_config_arguments(p, m.preset_kind)
    add_launch_arguments(p, "jobs (for methods that fan out work through torchx)")
    for flag in m.flags:
        if flag.switch:
            p.add_argument(flag.flag, dest=f"flag_{flag.key}", action="store_true", help=flag.help)
        else:
            p.add_argument(flag.flag, dest=f"flag_{flag.key}", metavar=flag.key.upper(), help=flag.help)
    p.set_defaults(func=_run_method, method_name=m.name)


def _run_ls(a: argparse.Namespace) -> None:
    names = list_methods()
    width = max(len(n) for n in names)
    for name in names:
        m = get_method(name)
        presets = ", ".join(m.presets) or "-"
        print(f"{name:<{width}}  {m.summary}\n{'':<{width}}  presets: {presets}")


def _run_method(a: argparse.Namespace) -> None:
    from recsearch.data.criteo import parse_days
    from recsearch.search.contract import run_search
    from recsearch.utils.config import load_config

    m = get_method(a.method_name)
    overrides = list(a.overrides)
    for flag in m.flags:
        value: Any = getattr(a, f"flag_{flag.key}")
        if flag.switch and value:
            overrides.append(f"{flag.key}=true")
        elif not flag.switch and value is not None:
            overrides.append(f"{flag.key}={value}")
    config: Any = load_config(m.config, a.config, overrides, preset=a.preset, preset_kind=m.preset_kind)
    launch = launch_options(a)
    r = run_search(
        m.name,
        a.data,
        parse_days(a.train_days),
        a.val_day,
        a.out,
        config,
        preset=a.preset,
        launch=launch,
        restart=a.restart,
    )
    if r.get("dryrun"):
        return
    res = r["result"]
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in r["phases"].items())
    print(
        f"{m.name}: {res['name']} ({res['flops'] / 1e6:.3f} MFLOPs/example, {res['params']:,} params) "
        f"in {r['wall_seconds']:.0f} s ({phases})\n"
        f"  -> {a.out}/arch.json, {a.out}/search.json, {a.out}/report.md"
    )
