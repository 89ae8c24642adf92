"""One job of a search that fans out (what the shared job pool submits through torchx).

    python -m recsearch.search.job --search-dir DIR --job NAME

Reads ``DIR/request.json`` (written by ``recsearch search <method>``), rebuilds the
method's config from it and runs the method's job ``NAME`` (e.g. one day of a
DistDNAS search). Errors in the request end in one line and exit status 2.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m recsearch.search.job",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--search-dir", required=True, help="search directory (with request.json)")
    p.add_argument("--job", required=True, help="the job's name, e.g. day_3")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        method, config, data = _load_request(a.search_dir)
        with _job_lock(a.search_dir, a.job):
            method.run_job(config, data, a.search_dir, a.job, not a.no_progress)
    except (ValueError, FileNotFoundError) as e:
        print(f"search job {a.job}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"search job {a.job}: stopped; rerunning the search resumes it", file=sys.stderr)
        return 130
    return 0


@contextmanager
def _job_lock(search_dir: str, job: str) -> Iterator[None]:
    """One process per job at a time: a rerun that finds the job still running (e.g. an
    orphan of a killed search command) waits for it, then finds its result and skips."""
    folder = os.path.join(search_dir, ".locks")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{job}.lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"search job {job}: another process runs it; waiting for it", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load_request(search_dir: str) -> tuple[Any, Any, Any]:
    """The method, its config and the data of the search prepared in ``search_dir``."""
    from recsearch.search.contract import REQUEST, SearchData, check_request
    from recsearch.search.registry import get_method
    from recsearch.utils.config import build_config
    from recsearch.utils.fileio import read_json

    path = f"{search_dir}/{REQUEST}"
    try:
        request = read_json(path)
        method = get_method(request["method"])
        config: Any = build_config(method.config, request["config"])
        train_days, val_day = request["train_days"], request["val_day"]
    except FileNotFoundError:
        raise ValueError(
            f"{path} not found: a search job runs inside a directory that `recsearch search <method>` "
            "prepared"
        ) from None
    except (KeyError, TypeError):
        raise ValueError(f"{path} is damaged; rerun `recsearch search` with --restart") from None
    info = check_request(request["data"], train_days, val_day)
    return method, config, SearchData(request["data"], train_days, val_day, info)


if __name__ == "__main__":
    sys.exit(main())
