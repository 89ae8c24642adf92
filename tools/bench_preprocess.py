"""Benchmark: recsearch preprocess vs TorchRec's own Criteo converter on the same day.

    python tools/bench_preprocess.py [--rows 200000] [--scale-rows 1000000] [--preset small]

Generates one raw day with `recsearch synth` (Zipf-skewed values), then converts it
  * with TorchRec: BinaryCriteoUtils.tsv_to_npys followed by sparse_to_contiguous;
  * with recsearch: the preprocess stage (vocabulary pass + shard pass), one worker;
each in a fresh subprocess, so peak RSS (VmHWM) belongs to that converter alone.
Prints rows/s and peak RSS of each and their ratio, and recsearch's peak RSS on a
larger day (--scale-rows) to show memory does not grow with the day size.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not
    inherited from the parent across fork + exec), plus its children's peak."""
    with open("/proc/self/status") as f:
        hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (hwm_kb + child_kb) / 1024


def run_torchrec(raw: str, out: str) -> dict:
    from torchrec.datasets.criteo import BinaryCriteoUtils

    start = time.perf_counter()
    BinaryCriteoUtils.tsv_to_npys(
        raw, f"{out}/day_0_dense.npy", f"{out}/day_0_sparse.npy", f"{out}/day_0_labels.npy"
    )
    BinaryCriteoUtils.sparse_to_contiguous([f"{out}/day_0_sparse.npy"], out)
    return {"seconds": time.perf_counter() - start}


def run_recsearch(raw_dir: str, out: str) -> dict:
    from recsearch.data.preprocess import PreprocessOptions, preprocess

    start = time.perf_counter()
    preprocess(raw_dir, out, PreprocessOptions(days=(0,), vocab_days=(0,), workers=1))
    return {"seconds": time.perf_counter() - start}


def _child(which: str, raw_dir: str, out: str) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        res = run_torchrec(f"{raw_dir}/day_0", out) if which == "torchrec" else run_recsearch(raw_dir, out)
    res["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(res))


def measure(which: str, raw_dir: str, work: str) -> dict:
    out = tempfile.mkdtemp(dir=work)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, raw_dir, out],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_day(rows: int, preset: str, seed: int, work: str) -> tuple[str, int]:
    from recsearch.data.synth_days import synth

    raw = tempfile.mkdtemp(dir=work)
    synth(raw, days=1, rows_per_day=rows, preset=preset, seed=seed)
    return raw, Path(raw, "day_0").stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000, help="rows of the day both converters convert")
    p.add_argument("--scale-rows", type=int, default=1_000_000, help="larger day, recsearch only (0: skip)")
    p.add_argument("--preset", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        _child(*a.child)
        return
    work = tempfile.mkdtemp(prefix="bench_preprocess_")
    try:
        raw, nbytes = make_day(a.rows, a.preset, a.seed, work)
        print(f"day: {a.rows:,} rows, {nbytes / 1e6:.1f} MB raw, synth --preset {a.preset} --seed {a.seed}")
        ours = measure("recsearch", raw, work)
        theirs = measure("torchrec", raw, work)
        rows = {name: a.rows / r["seconds"] for name, r in (("recsearch", ours), ("torchrec", theirs))}
        print(f"{'converter':<12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>14}")
        for name, r in (("torchrec", theirs), ("recsearch", ours)):
            print(f"{name:<12}{r['seconds']:>10.2f}{rows[name]:>12,.0f}{r['peak_rss_mb']:>14,.0f}")
        print(
            f"speed ratio recsearch/torchrec: {rows['recsearch'] / rows['torchrec']:.1f}x rows/s; "
            f"peak RSS ratio: {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}"
        )
        if a.scale_rows:
            raw2, nbytes2 = make_day(a.scale_rows, a.preset, a.seed + 1, work)
            big = measure("recsearch", raw2, work)
            print(
                f"recsearch on a {a.scale_rows:,}-row day ({nbytes2 / 1e6:.0f} MB): "
                f"{a.scale_rows / big['seconds']:,.0f} rows/s, peak RSS {big['peak_rss_mb']:,.0f} MB "
                f"(vs {ours['peak_rss_mb']:,.0f} MB at {a.rows:,} rows)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
