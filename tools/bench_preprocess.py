"""Benchmark: `recsearch preprocess` on one day vs TorchRec's converter, and its scaling with workers.

    python tools/bench_preprocess.py [--rows 1500000] [--rounds 3] [--scale-rows 3000000]

Generates one raw day with `recsearch synth --preset small` (Zipf-skewed values), then, each
in a fresh process, measured in the same run:
  * TorchRec: BinaryCriteoUtils.tsv_to_npys then sparse_to_contiguous (the converter's own
    time; its process start is not counted, in its favour);
  * recsearch: the whole CLI, `python -m recsearch preprocess` (process start, vocabulary
    pass, shard pass, checksums, manifest), with 1 worker and with 2 workers, one thread
    each (a worker = one core), rounds alternating the order; the speed ratio is the
    median of the per-round ratios (this machine is noisy).
Peak RSS: the command's own VmHWM and the largest worker's (forked workers share the
parent's pages, so their sum overstates). With --scale-rows, recsearch on a day twice as
large shows memory does not grow with rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _child_torchrec(raw: str, out: str) -> None:
    from torchrec.datasets.criteo import BinaryCriteoUtils

    start = time.perf_counter()
    BinaryCriteoUtils.tsv_to_npys(
        raw, f"{out}/day_0_dense.npy", f"{out}/day_0_sparse.npy", f"{out}/day_0_labels.npy"
    )
    BinaryCriteoUtils.sparse_to_contiguous([f"{out}/day_0_sparse.npy"], out)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": _vmhwm_mb(), "worker_mb": 0.0}))


def _child_recsearch(args: list[str]) -> None:
    import contextlib
    import io

    from recsearch.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(args)
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rc": rc, "peak_mb": _vmhwm_mb(), "worker_mb": worker}))


def run_torchrec(raw_dir: str, work: str) -> dict:
    out = tempfile.mkdtemp(dir=work)
    cmd = [sys.executable, __file__, "--child-torchrec", f"{raw_dir}/day_0", out]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    shutil.rmtree(out)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_recsearch(raw_dir: str, work: str, workers: int, threads: int) -> dict:
    """The whole CLI in a fresh process; wall seconds include the interpreter's start."""
    out = tempfile.mkdtemp(dir=work)
    args = ["preprocess", "--input", raw_dir, "--out", out, "--days", "0", "--vocab-days", "0"]
    args += ["--workers", str(workers), "--threads", str(threads)]
    start = time.perf_counter()
    r = subprocess.run([sys.executable, __file__, "--child-recsearch", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(out)
    if r.returncode:
        sys.exit(f"recsearch preprocess failed:\n{r.stderr[-3000:]}")
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "seconds": seconds}


def make_day(rows: int, seed: int, work: str) -> tuple[str, int]:
    from recsearch.data.synth_days import synth

    raw = tempfile.mkdtemp(dir=work)
    synth(raw, days=[0], rows_per_day=rows, preset="small", seed=seed)
    return raw, Path(raw, "day_0").stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_500_000, help="rows of the day both converters convert")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the 1- vs 2-worker comparison")
    p.add_argument("--scale-rows", type=int, default=0, help="a larger day, recsearch only (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-torchrec", action="store_true", help="only the 1- vs 2-worker comparison")
    p.add_argument("--child-torchrec", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--child-recsearch", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child_torchrec:
        return _child_torchrec(*a.child_torchrec)
    if a.child_recsearch:
        return _child_recsearch(a.child_recsearch)
    work = tempfile.mkdtemp(prefix="bench_preprocess_")
    try:
        raw, nbytes = make_day(a.rows, a.seed, work)
        cores = os.cpu_count() or 1
        print(
            f"day: {a.rows:,} rows, {nbytes / 1e6:.1f} MB raw (synth --preset small --seed {a.seed}); "
            f"{cores} cores"
        )
        theirs = None if a.no_torchrec else run_torchrec(raw, work)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        ratios = []
        for r in range(a.rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            this = {w: run_recsearch(raw, work, w, 1) for w in order}
            for w in order:
                runs[w].append(this[w])
            ratios.append(this[1]["seconds"] / this[2]["seconds"])
        med = {w: statistics.median(x["seconds"] for x in rs) for w, rs in runs.items()}
        print("\n| converter | seconds | rows/s | peak RSS MB (command / largest worker) |")
        print("|---|---:|---:|---:|")
        if theirs:
            print(f"| TorchRec tsv_to_npys + sparse_to_contiguous | {theirs['seconds']:.2f} | "
                  f"{a.rows / theirs['seconds']:,.0f} | {theirs['peak_mb']:,.0f} |")  # fmt: skip
        for w in (1, 2):
            peak = max(x["peak_mb"] for x in runs[w])
            worker = max(x["worker_mb"] for x in runs[w])
            print(f"| recsearch CLI, {w} worker(s) x 1 thread (median of {a.rounds}) | {med[w]:.2f} | "
                  f"{a.rows / med[w]:,.0f} | {peak:,.0f} / {worker:,.0f} |")  # fmt: skip
        if theirs:
            print(
                f"\nrecsearch (whole CLI, 2 workers) / TorchRec converter: "
                f"{theirs['seconds'] / med[2]:.1f}x rows/s (goal >= 10x)"
            )
        ratios.sort()
        print(
            f"2 workers / 1 worker on one day: median of per-round ratios {statistics.median(ratios):.2f}x "
            f"(min {ratios[0]:.2f}x, max {ratios[-1]:.2f}x; goal >= 1.8x)"
        )
        if a.scale_rows:
            raw2, nbytes2 = make_day(a.scale_rows, a.seed + 1, work)
            big = run_recsearch(raw2, work, 2, 1)
            print(
                f"recsearch on a {a.scale_rows:,}-row day ({nbytes2 / 1e6:.0f} MB), 2 workers: "
                f"{a.scale_rows / big['seconds']:,.0f} rows/s, peak RSS {big['peak_mb']:,.0f} MB command / "
                f"{big['worker_mb']:,.0f} MB largest worker"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
