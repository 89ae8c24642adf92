"""The worker pool of ``recsearch preprocess``: jobs over day ranges, with one progress bar.

Workers are forked (where the platform can), so they share what the parent built
before the pool started (the vocabulary's id maps) instead of each building a copy.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tqdm import tqdm

_progress: Any = None  # a queue (worker processes) or the progress bar (in-process)
_threads = 1


def threads() -> int:
    """Threads this worker may use (Arrow's CSV reader, parsing threads)."""
    return _threads


def _init_worker(q: Any, threads: int, parent: int) -> None:
    global _progress, _threads
    _die_with_parent(parent)
    _progress, _threads = q, threads
    _arrow_threads(threads)


def _die_with_parent(parent: int) -> None:
    """A worker ends when the preprocess command dies (e.g. kill -9), instead of lingering."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _arrow_threads(threads: int) -> None:
    """Arrow's CSV reader and compute kernels use this many threads (a worker's share)."""
    import pyarrow as pa

    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)


def report(raw_bytes: int, rows: int) -> None:
    if _progress is not None:
        _progress.put((raw_bytes, rows))


class _Progress:
    """One progress bar over raw bytes read, with rows and rows/s."""

    def __init__(self, total_bytes: int, desc: str) -> None:
        self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=desc, dynamic_ncols=True)
        self.rows = 0
        self.start = time.monotonic()

    def put(self, item: tuple[int, int]) -> None:
        nbytes, nrows = item
        self.rows += nrows
        self.bar.update(nbytes)
        rate = self.rows / max(time.monotonic() - self.start, 1e-9)
        self.bar.set_postfix(rows=f"{self.rows:,}", rows_per_s=f"{rate:,.0f}", refresh=False)


def run_parallel(
    fn: Callable[..., None],
    jobs: list[tuple[Any, ...]],
    total_bytes: int,
    workers: int,
    threads_per_worker: int,
    desc: str,
    done: Callable[[int], None] | None = None,
) -> None:
    """Run ``fn(*job)`` for each job: in worker processes (forked, so they share what this
    process built, e.g. the id maps) when there are several workers and jobs, else here.
    ``done(i)`` is called in this process as job ``i`` finishes."""
    global _progress, _threads
    if not jobs:
        return
    progress = _Progress(total_bytes, desc)
    n = min(workers, len(jobs))
    try:
        if n == 1:  # in this process: no start-up cost, and memory is measured where it is used
            _progress, _threads = progress, workers * threads_per_worker
            _arrow_threads(_threads)
            for i, job in enumerate(jobs):
                fn(*job)
                if done is not None:
                    done(i)
            return
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        q = ctx.Queue()
        init = (q, threads_per_worker, os.getpid())
        try:
            _pool(fn, jobs, n, ctx, init, progress, q, done)
        except BrokenProcessPool:
            raise ChildProcessError(
                f"a {desc} worker process died (killed, or out of memory); rerun the same command "
                "to resume: finished work is kept"
            ) from None
    finally:
        _progress, _threads = None, 1
        progress.bar.close()


def _pool(
    fn: Callable[..., None],
    jobs: list[tuple[Any, ...]],
    n: int,
    ctx: Any,
    init: tuple[Any, ...],
    progress: _Progress,
    q: Any,
    done: Callable[[int], None] | None,
) -> None:
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        pending: set[Future[None]] = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            while True:
                try:
                    progress.put(q.get_nowait())
                except queue.Empty:
                    break
            for f in finished:
                exc = f.exception()
                if exc is not None:
                    for p in pending:
                        p.cancel()
                    raise exc
                if done is not None:
                    done(futures[f])
