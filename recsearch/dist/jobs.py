"""One torchx job pool for every method that fans work out: submit, poll, retry, resume.

A job is a name, a torchx ``AppDef`` factory and a "done" test on its outputs. The
pool skips jobs already done (a rerun resumes), submits the rest through torchx's
Runner API (at most ``workers`` at a time on a local scheduler, each with
``threads`` intra-op threads; all at once elsewhere), polls them, resubmits a
failed job up to ``retries`` times (a job resumes from its own checkpoint), and
reports the ones that failed for good with where their logs are.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torchx.specs as specs

from recsearch.utils.faults import fault_point

IMAGE = "ghcr.io/pytorch/torchx:0.7.0"
LOCAL_SCHEDULERS = ("local_cwd", "local_docker")
# schedulers whose jobs run on this machine's (or a shared) filesystem without a container: a job
# runs this interpreter, with recsearch installed, instead of the image's ``python``
HOST_SCHEDULERS = ("local_cwd", "slurm")
# log lines that say nothing about a failure: progress bars, bash -x traces of a batch script
_NOISE = re.compile(r"\d+%\||^\+ |^\s*(if|fi|then|exit|echo|set|export|srun --)\b")


@dataclass
class LaunchOptions:
    """How jobs run (not what they compute: a rerun may change these).

    Attributes:
        scheduler: torchx scheduler (local_cwd, slurm, kubernetes, ...).
        workers: jobs at a time on a local scheduler.
        threads: intra-op threads per job (0: cores / workers locally, all cores elsewhere).
        retries: resubmissions of a failed job.
        scheduler_args: torchx scheduler options (e.g. partition, queue).
        image: container image for container schedulers.
        dryrun: print what would be submitted; run nothing.
        progress: progress bars and per-job lines on stderr.
    """

    scheduler: str = "local_cwd"
    workers: int = 2
    threads: int = 0
    retries: int = 1
    scheduler_args: dict[str, Any] = field(default_factory=dict)
    image: str = IMAGE
    dryrun: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.threads < 0:
            raise ValueError(f"--threads-per-job must be >= 0, got {self.threads}")
        if self.retries < 0:
            raise ValueError(f"--retries must be >= 0, got {self.retries}")

    @property
    def local(self) -> bool:
        return self.scheduler in LOCAL_SCHEDULERS


def parse_scheduler_args(scheduler: str, text: str) -> dict[str, Any]:
    """``k=v,k=v`` scheduler options, checked against the scheduler's run options."""
    from torchx.runner import get_runner

    try:
        opts = get_runner().scheduler_run_opts(scheduler)
    except (KeyError, ValueError) as e:
        raise ValueError(f"unknown torchx scheduler {scheduler!r}: {e}") from None
    return dict(opts.cfg_from_str(text)) if text else {}


def module_app(
    module: str,
    args: list[str],
    name: str,
    threads: int,
    launch: LaunchOptions,
    memMB: int = 8192,
) -> specs.AppDef:
    """A torchx AppDef running ``python -m module args`` with ``threads`` intra-op threads."""
    from torchx.components.utils import python

    app = python(*args, m=module, name=name, image=launch.image, cpu=max(threads, 1), memMB=memMB)
    app.roles[0].env["OMP_NUM_THREADS"] = str(threads)
    app.roles[0].name = name  # what squeue and the log files show (the component says "python")
    if launch.scheduler in HOST_SCHEDULERS:  # the interpreter running this command
        app.roles[0].entrypoint = sys.executable
    return app


@dataclass
class PoolJob:
    """One job: ``app(threads)`` builds its AppDef; ``done()`` tells from its outputs whether
    it has finished; ``summary()`` (optional) is the line printed when it does."""

    name: str
    app: Callable[[int], specs.AppDef]
    done: Callable[[], bool]
    summary: Callable[[], str] | None = None
    label: str = ""  # what the job covers, for messages (e.g. "days 0-3")


@dataclass
class PoolResult:
    done: list[str]
    failed: dict[str, str]  # name -> reason and where its logs are
    seconds: float
    threads: int
    dryrun: bool = False


class JobPool:
    """Run jobs through torchx (see the module docstring).

    Args:
        launch: scheduler, workers, threads, retries.
        log_dir: where a local scheduler writes the jobs' logs.
    """

    def __init__(self, launch: LaunchOptions, log_dir: str) -> None:
        self.launch = launch
        self.log_dir = os.path.abspath(log_dir)
        self.cfg: dict[str, Any] = dict(launch.scheduler_args)
        if launch.local:
            self.cfg.setdefault("log_dir", self.log_dir)
        self.logs: dict[str, str] = {}  # handle -> where that submission's logs are

    def _submit(self, runner: Any, job: PoolJob, threads: int, attempt: int) -> str:
        """Submit one attempt of ``job``; on Slurm each attempt gets its own job directory
        under the log directory (its ``slurm-*.out/err`` files land there)."""
        cfg = dict(self.cfg)
        where = self.log_dir
        if self.launch.scheduler == "slurm" and "job_dir" not in self.cfg:
            where = cfg["job_dir"] = f"{self.log_dir}/{job.name}.{attempt}"
            os.makedirs(where, exist_ok=True)
        handle = str(runner.run(job.app(threads), self.launch.scheduler, cfg=cfg, workspace=None))
        self.logs[handle] = where if self.launch.local or "job_dir" in cfg else f"torchx log {handle}"
        return handle

    def _status(self, runner: Any, handle: str) -> Any:
        """torchx's status of a submitted job. torchx 0.7.0 reads Slurm's accounting state
        verbatim and fails on a cancelled job's ``CANCELLED by <uid>`` (an assertion in
        SlurmScheduler.describe): that job is reported cancelled, as it is."""
        from torchx.specs import AppState, AppStatus

        try:
            return runner.status(handle)
        except AssertionError as e:
            if self.launch.scheduler != "slurm" or "CANCELLED by" not in str(e):
                raise
            return AppStatus(state=AppState.CANCELLED, msg="cancelled (scancel)")

    def _last_error_line(self, handle: str) -> str:
        """The last error line a failed job left where its logs are on this machine (a local
        scheduler's stderr; on Slurm the job's stderr, then srun's lines in the batch output,
        e.g. ``srun: error: node: task 0: Killed``); progress bars and shell traces skipped."""
        app_id = handle.rstrip("/").rsplit("/", 1)[-1]
        where = self.logs.get(handle, self.log_dir)
        patterns = (
            f"{where}/*/{app_id}/*/*/stderr.log",
            f"{where}/slurm-{app_id}-*.err",
            f"{where}/slurm-{app_id}.out",
        )
        for path in (p for pattern in patterns for p in sorted(glob.glob(pattern))):
            try:
                with open(path, errors="replace") as f:
                    tail = f.read().splitlines()[-200:]
            except OSError:
                continue
            lines = [ln.strip() for ln in tail if ln.strip() and not _NOISE.search(ln)]
            errors = [ln for ln in lines if "error" in ln.lower()]
            if errors or (lines and not path.endswith(".out")):
                return (errors or lines)[-1][-300:]
        return ""

    def threads_for(self, running: int) -> int:
        if self.launch.threads:
            return self.launch.threads
        cores = os.cpu_count() or 1
        return max(1, cores // max(running, 1)) if self.launch.local else cores

    def run(self, jobs: list[PoolJob], desc: str = "jobs") -> PoolResult:
        from torchx.runner import get_runner
        from torchx.specs import AppState
        from tqdm import tqdm

        launch = self.launch
        finished = [j.done() for j in jobs]
        todo = [j for j, f in zip(jobs, finished, strict=True) if not f]
        skipped = [j.name for j, f in zip(jobs, finished, strict=True) if f]
        if skipped and launch.progress:
            print(f"already done, skipped: {', '.join(skipped)}", file=sys.stderr)
        parallel = min(launch.workers, len(todo)) if launch.local else len(todo)
        threads = self.threads_for(parallel)
        runner = get_runner()
        if launch.dryrun:
            for job in todo:
                info = runner.dryrun(job.app(threads), launch.scheduler, cfg=self.cfg, workspace=None)
                label = f" ({job.label})" if job.label else ""
                print(f"# {job.name}{label} on {launch.scheduler}:\n{info}")
            return PoolResult(skipped, {}, 0.0, threads, dryrun=True)

        pending = list(todo)
        attempts = {j.name: 0 for j in todo}
        running: dict[str, PoolJob] = {}
        done, failed = list(skipped), {}
        start = time.perf_counter()
        bar = tqdm(
            total=len(jobs),
            initial=len(skipped),
            desc=desc,
            unit="job",
            disable=not launch.progress,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,  # logs: a line now and then, not a stream
        )
        shown = ""
        try:
            while pending or running:
                while pending and len(running) < parallel:
                    job = pending.pop(0)
                    attempts[job.name] += 1
                    running[self._submit(runner, job, threads, attempts[job.name])] = job
                names = ",".join(j.name for j in running.values()) or "-"
                if names != shown:
                    bar.set_postfix(running=names)
                    shown = names
                time.sleep(0.5)
                for handle, job in list(running.items()):
                    status = self._status(runner, handle)
                    if status is None or not status.is_terminal():
                        continue
                    del running[handle]
                    if status.state == AppState.SUCCEEDED and job.done():
                        done.append(job.name)
                        bar.update(1)
                        fault_point("pool-job-done")
                        if job.summary is not None:
                            bar.write(f"{job.name}: {job.summary()}")
                        continue
                    msg = status.msg if status.msg not in ("", "<NONE>", status.state.name) else ""
                    reason = status.state.name + (f": {msg}" if msg else "")
                    if status.state == AppState.SUCCEEDED:
                        reason = "exited without writing its result"
                    last = self._last_error_line(handle)
                    reason += f" ({last})" if last else ""
                    where = f" (logs: {self.logs.get(handle, handle)})"
                    if attempts[job.name] <= launch.retries:
                        bar.write(
                            f"{job.name}: {reason}{where}; retrying "
                            f"(attempt {attempts[job.name] + 1} of {launch.retries + 1})"
                        )
                        pending.append(job)
                    else:
                        failed[job.name] = reason + where
                        bar.write(f"{job.name}: FAILED after {attempts[job.name]} attempt(s): {reason}{where}")
        except KeyboardInterrupt:
            for handle in running:
                runner.cancel(handle)
            raise
        finally:
            bar.close()
        return PoolResult(done, failed, time.perf_counter() - start, threads)
