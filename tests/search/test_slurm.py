"""Through real Slurm: a one-node cluster on this machine (tools/slurm_local.sh) runs
preprocess -> per-day search (two jobs at once) -> train -> export as Slurm jobs submitted by
torchx's slurm scheduler, with the results of local runs; a job cancelled with ``scancel``
mid-run is retried by the job pool and resumes from its checkpoint; a job that fails for good
is one error line naming the day and its logs.

Skipped, with the reason printed (``-rs``), where the cluster cannot be brought up: not root,
or Slurm's packages neither installed nor installable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, assert_export_matches_eager, run_recsearch, torchx, train_processes

SCRIPT = REPO / "tools" / "slurm_local.sh"
LAUNCHERS = REPO / "launchers" / "recsearch_jobs.py"
SEARCH = ["search", "distdnas", "--preset", "tiny", "--train-days", "0-1", "--val-day", "2"]
ON_SLURM = ["--scheduler", "slurm", "--threads-per-job", "1"]


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    """A running one-node cluster; stopped afterwards if this fixture started it."""
    if os.geteuid() != 0:
        pytest.skip("Slurm tests need root to start the one-node cluster (tools/slurm_local.sh)")
    was_up = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
    if not was_up:
        missing = not shutil.which("sinfo") or not Path("/usr/sbin/slurmctld").exists()
        if missing and not shutil.which("apt-get"):
            pytest.skip("Slurm is not installed and there is no apt-get to install it")
        start = ["bash", str(SCRIPT), "start", "--install"]
        r = subprocess.run(start, capture_output=True, text=True, timeout=900)
        if r.returncode != 0 and missing:
            pytest.skip(f"Slurm's packages could not be installed: {r.stderr.strip()[-300:]}")
        assert r.returncode == 0, r.stderr[-2000:]
    yield
    if not was_up:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=300)


def torchx_run(component: str, *args: str, cwd: Path) -> None:
    """``torchx run --wait -s slurm launchers/recsearch_jobs.py:COMPONENT ARGS``, asserting the
    job succeeded (its Slurm logs land in ``cwd``)."""
    r = torchx("run", "--wait", "-s", "slurm", f"{LAUNCHERS}:{component}", *args, timeout=600, cwd=cwd)
    assert r.returncode == 0 and "SUCCEEDED" in r.stdout + r.stderr, (component, r.stderr[-3000:])


def slurm_jobs(log_dir: Path) -> dict[str, dict[str, str]]:
    """The cluster's accounting records (state, start, end) of the Slurm jobs whose logs
    (``slurm-<id>.out``) are in ``log_dir``, by job id."""
    ids = [p.name.split("-")[1].split(".")[0] for p in log_dir.glob("slurm-*.out") if p.name.count("-") == 1]
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(ids), "-o", "JobID,State,Start,End"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    keys, rows = ("state", "start", "end"), [ln.split("|") for ln in out.splitlines() if ln]
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


@pytest.mark.integration
def test_the_pipeline_runs_as_slurm_jobs_with_the_results_of_local_runs(
    slurm: None, raw_days: Path, shards: Path, searched: Callable[[str], Path], tmp_path: Path
) -> None:
    # preprocess: the same shards as a local preprocess of the same days
    torchx_run("preprocess", "--input", str(raw_days), "--out", str(tmp_path / "shards"), "--workers", "1",
               "--cpu", "1", cwd=tmp_path)  # fmt: skip
    for day in range(3):
        for kind in ("dense", "sparse", "labels"):
            name = f"day_{day}_{kind}.npy"
            assert (tmp_path / "shards" / name).read_bytes() == (shards / name).read_bytes(), name
    # the per-day search: two Slurm jobs at once, the architecture of a local search
    out = tmp_path / "s"
    run_recsearch(
        *SEARCH, "--data", str(tmp_path / "shards"), "--out", str(out), *ON_SLURM, timeout=900, cwd=tmp_path
    )
    days = [json.loads((out / f"day_{d}" / "weights.json").read_text()) for d in (0, 1)]
    assert all(d["threads"] == 1 for d in days)
    expected = json.loads((searched("distdnas") / "aggregate.json").read_text())
    got = json.loads((out / "aggregate.json").read_text())
    np.testing.assert_allclose(got["alpha"], expected["alpha"], atol=1e-5)
    arch = json.loads((out / "arch.json").read_text())
    assert arch["blocks"] == json.loads((searched("distdnas") / "arch.json").read_text())["blocks"]
    for d in (0, 1):  # each day ran as a Slurm job, its logs in the search's log directory
        assert list((out / "logs" / f"day_{d}.1").glob("slurm-*.out")), d
    jobs = [j for d in (0, 1) for j in slurm_jobs(out / "logs" / f"day_{d}.1").values()]
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 2, jobs
    assert max(j["start"] for j in jobs) < min(j["end"] for j in jobs), jobs  # the two days overlapped
    # train with 2 processes as one Slurm job (torchrun inside), then export as another
    run = tmp_path / "run"
    extra = ["eval_batch_size=1000", "warmup_steps=5", "sharding_types=[table_wise]", "batch_size=64"]
    torchx_run("train", "--data", str(tmp_path / "shards"), "--train_days", "0-1", "--eval_day", "2",
               "--out", str(run), "--arch", str(out / "arch.json"), "-j", "1x2", "--cpu", "2",
               "--memMB", "4000", "--", *extra, cwd=tmp_path)  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    local = train_processes(2, ["--arch", str(out / "arch.json")], shards, tmp_path / "local", *extra[1:])
    assert metrics["world_size"] == 2
    assert metrics["auc"] == pytest.approx(local["auc"], abs=1e-6)
    assert metrics["logloss"] == pytest.approx(local["logloss"], abs=1e-6)
    torchx_run("export", "--run", str(run), "--out", str(tmp_path / "m.pt"), cwd=tmp_path)
    assert_export_matches_eager(run, tmp_path / "m.pt", tmp_path)


def _stopped_jobs(search_dir: Path) -> dict[int, str]:
    """Slurm job id -> pid of this search's day jobs that stopped themselves (SIGSTOP)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            env = dict(v.split(b"=", 1) for v in (proc / "environ").read_bytes().split(b"\0") if b"=" in v)
        except (OSError, IndexError, ValueError):
            continue
        if state == "T" and b"recsearch.search.job" in cmd and str(search_dir).encode() in cmd:
            found[int(env[b"SLURM_JOB_ID"])] = proc.name
    return found


@pytest.mark.integration
def test_a_cancelled_job_is_retried_and_resumes_and_a_lost_day_names_its_logs(
    slurm: None, shards: Path, searched: Callable[[str], Path], tmp_path: Path
) -> None:
    # each day job stops itself after its 3rd checkpoint (step 15 of 23) and is scancel'led
    # there (Slurm sends SIGCONT, then SIGTERM: the job checkpoints and exits); its retry
    # resumes from a checkpoint and saves fewer than 3, so it runs to the end
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "recsearch", *SEARCH, "--data", str(shards), "--out", str(out), *ON_SLURM,
           "--retries", "1", "checkpoint_every=5"]  # fmt: skip
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env["RECSEARCH_KILL_AT"] = "checkpoint-saved:3:SIGSTOP"
    search = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
    )
    cancelled: set[int] = set()
    deadline = time.monotonic() + 600
    while search.poll() is None and time.monotonic() < deadline:
        for job_id in set(_stopped_jobs(out)) - cancelled:
            subprocess.run(["scancel", str(job_id)], check=True)
            cancelled.add(job_id)
        time.sleep(0.2)
    if search.poll() is None:
        search.send_signal(signal.SIGINT)
    log = search.communicate(timeout=120)[0]
    assert search.returncode == 0, log[-3000:]
    assert len(cancelled) == 2, log[-3000:]
    for d in (0, 1):
        [(job_id, first)] = slurm_jobs(out / "logs" / f"day_{d}.1").items()
        assert int(job_id) in cancelled and first["state"].startswith("CANCELLED"), first
        assert [j["state"] for j in slurm_jobs(out / "logs" / f"day_{d}.2").values()] == ["COMPLETED"]
        assert f"day_{d}: CANCELLED" in log and "retrying (attempt 2 of 2)" in log, log[-3000:]
        retry_log = "".join(p.read_text() for p in (out / "logs" / f"day_{d}.2").glob("slurm-*-0.out"))
        # the checkpoint of step 15, or the one the job wrote on scancel's SIGTERM after it
        resumed = re.search(r"resuming from the checkpoint at step (\d+) of 23", retry_log)
        assert resumed and 15 <= int(resumed.group(1)) < 23, retry_log[-2000:]
    expected = json.loads((searched("distdnas") / "aggregate.json").read_text())
    got = json.loads((out / "aggregate.json").read_text())
    np.testing.assert_allclose(got["alpha"], expected["alpha"], atol=1e-5)
    # a day that fails on every attempt: one line naming the day and where its logs are
    lost = tmp_path / "lost"
    r = run_recsearch(*SEARCH, "--data", str(shards), "--out", str(lost), *ON_SLURM, "--retries", "0",
                      env={"RECSEARCH_KILL_AT": "checkpoint-saved:1"}, check=False, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("recsearch search: error: search job(s) failed: day_"), error
    assert error.count("srun: error: ") == 2 and "Killed" in error, error  # what Slurm saw
    for d in (0, 1):
        assert f"day_{d}: " in error and f"logs: {lost / 'logs' / f'day_{d}.1'}" in error, error
        assert list((lost / "logs" / f"day_{d}.1").glob("slurm-*.err"))
