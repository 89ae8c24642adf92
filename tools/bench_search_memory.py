"""Benchmark: peak memory of one DistDNAS search job vs rows per day and evaluation batch.

    python tools/bench_search_memory.py [--rows 100000 300000] [--eval-batch 16384 2048]
        [--preset small] [--work runs/experiments]

For each rows-per-day: `recsearch synth --preset PRESET` days 0-1, preprocessed; then for each
evaluation batch size one search job (search preset small, train day 0, validation day 1),
prepared with `recsearch search distdnas --dryrun` and run as the job pool runs it
(`python -m recsearch.search.job`, one thread). Its /proc/<pid>/status is polled every 50 ms:
peak VmRSS (VmHWM), and the peaks of its anonymous part (heap: tensors, optimizer state,
activations) and its file-backed part (the memory-mapped shards, reclaimable page cache).
Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from recsearch.experiments import Experiment


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(rest.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def run_job(search_dir: str, job: str) -> dict[str, float]:
    """Run one job, polling its memory; peaks in bytes and the wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "recsearch.search.job", "--search-dir", search_dir, "--job", job]
    start = time.perf_counter()
    log = f"{search_dir}/{job}.log"  # a file, not a pipe: a full pipe would stall the job
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak: dict[str, int] = {}
        while proc.poll() is None:
            for k, v in _status(proc.pid).items():
                peak[k] = max(peak.get(k, 0), v)
            time.sleep(0.05)
    if proc.returncode:
        raise SystemExit(f"job {job} in {search_dir} failed; its log: {log}")
    return {**{k: float(v) for k, v in peak.items()}, "seconds": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000])
    p.add_argument("--eval-batch", type=int, nargs="+", default=[16384, 2048])
    p.add_argument("--preset", default="small", help="synth preset")
    p.add_argument("--work", default="runs/experiments")
    a = p.parse_args()
    exp = Experiment(a.work, "bench_search_memory")
    gib = 1024**3
    lines = [
        f"Run `{exp.dir}`: synth --preset {a.preset}, search preset small, one job (day 0, validation "
        "day 1), one thread.",
        "",
        "| rows per day | eval batch | peak RSS GiB | peak anonymous GiB | peak file-backed GiB | job s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in a.rows:
        raw, shards = f"{exp.dir}/raw_{rows}", f"{exp.dir}/shards_{rows}"
        exp.recsearch(
            "synth", "--out", raw, "--days", "0-1", "--rows-per-day", str(rows), "--preset", a.preset
        )
        exp.recsearch("preprocess", "--input", raw, "--out", shards)
        for ebs in a.eval_batch:
            search = f"{exp.dir}/search_{rows}_{ebs}"
            where = ["--data", shards, "--train-days", "0", "--val-day", "1", "--out", search]
            exp.recsearch(
                "search", "distdnas", *where, "--preset", "small", "--dryrun", f"eval_batch_size={ebs}"
            )
            m = run_job(search, "day_0")
            lines.append(
                f"| {rows:,} | {ebs:,} | {m.get('VmHWM', 0) / gib:.2f} | {m.get('RssAnon', 0) / gib:.2f} | "
                f"{m.get('RssFile', 0) / gib:.2f} | {m['seconds']:.0f} |"
            )
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
