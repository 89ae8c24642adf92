"""The command-line flags of every stage that runs jobs through the shared pool
(``recsearch search <method>``, ``recsearch compare``), and the LaunchOptions they make."""

from __future__ import annotations

import argparse
from typing import Any


def add_launch_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--scheduler``, ``--workers``, ``--threads-per-job``, ``--retries``, ``--scheduler-args``,
    ``--image`` and ``--dryrun`` in one group titled ``what``."""
    jobs = p.add_argument_group(what)
    jobs.add_argument("--scheduler", default="local_cwd", help="torchx scheduler (default local_cwd)")
    jobs.add_argument(
        "--workers", type=int, default=2, help="jobs at a time on a local scheduler (default 2)"
    )
    jobs.add_argument(
        "--threads-per-job",
        type=int,
        default=0,
        help="intra-op threads per job (default 0: cores/workers locally, all cores elsewhere)",
    )
    jobs.add_argument("--retries", type=int, default=1, help="resubmissions of a failed job (default 1)")
    jobs.add_argument(
        "--scheduler-args", default="", help="torchx scheduler options k=v,k=v (slurm: partition=cpu)"
    )
    jobs.add_argument("--image", default="ghcr.io/pytorch/torchx:0.7.0", help="container image")
    jobs.add_argument("--dryrun", action="store_true", help="print what each job would submit; run nothing")


def launch_options(a: argparse.Namespace) -> Any:
    """The ``LaunchOptions`` of the flags :func:`add_launch_arguments` added."""
    from recsearch.dist.jobs import LaunchOptions, parse_scheduler_args

    return LaunchOptions(
        scheduler=a.scheduler,
        workers=a.workers,
        threads=a.threads_per_job,
        retries=a.retries,
        scheduler_args=parse_scheduler_args(a.scheduler, a.scheduler_args),
        image=a.image,
        dryrun=a.dryrun,
    )
