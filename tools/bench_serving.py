"""Benchmark: serving latency of a raw-feature export, TorchScript vs the eager model.

    python tools/bench_serving.py [--run RUN --data DATA --raw FILE --day N] [--model dlrm]
        [--rows 100000] [--preset small] [--batch 1 64 512] [--threads 1] [--work runs/experiments]

Without --run: `recsearch synth --preset PRESET` days 0-1 (ROWS each), preprocessed, MODEL
trained on day 0 (train preset tiny: the weights do not matter for latency). The run is
exported with `recsearch export --raw-features` (TorchScript), and raw lines of day 1 (parsed
as tools/score.py parses them) are scored in batches of each size by
* the TorchScript file, loaded with torch.jit.load (what a server runs), and
* the same model in eager PyTorch (``recsearch.export.raw.RawServingModel``),
alternating in rounds on the same batches with ``--threads`` intra-op threads. Per batch
size: p50 / p99 latency, rows/s, eager p50 / TorchScript p50 (>= 1: the export is not slower),
and the vocabulary lookup's share: the scripted ``VocabLookup`` alone, p50 over the whole
file's p50. First it checks the file against training's view: every raw line of the day
scored by the file vs the model on that day's shards (the largest difference is printed).
Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from recsearch.experiments import Experiment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score import batches, numbered_lines, parse  # noqa: E402  (tools/ is not a package)


def _times(fn, inputs: list[tuple[torch.Tensor, ...]]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    with torch.no_grad():
        for x in inputs:
            start = time.perf_counter()
            fn(*x)
            out.append(time.perf_counter() - start)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a trained run (default: train one on fresh synthetic data)")
    p.add_argument("--data", help="its preprocessed Criteo shards (with --run)")
    p.add_argument(
        "--raw", help="raw Criteo day file (.gz too) to score (with --run; default: the fresh day 1)"
    )
    p.add_argument("--day", type=int, default=1, help="the shard day that --raw holds")
    p.add_argument("--model", default="dlrm")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--preset", default="small", help="synth preset (vocabulary sizes)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64, 512])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per batch size")
    p.add_argument(
        "--scale-rows",
        type=int,
        nargs="*",
        default=[1_000_000],
        help="also time the lookup alone with every field's vocabulary at these many rows",
    )
    p.add_argument("--work", default="runs/experiments")
    a = p.parse_args()
    if bool(a.run) != bool(a.data) or bool(a.run) != bool(a.raw):
        raise SystemExit("bench_serving: give --run, --data and --raw together, or none of them")
    torch.set_num_threads(a.threads)
    exp = Experiment(a.work, "bench_serving")
    if a.run:
        run, data, raw = a.run, a.data, a.raw
    else:
        data = exp.synth_shards([0, 1], a.rows, 0, a.preset)
        run = f"{exp.dir}/runs/{a.model}"
        exp.train(["--model", a.model], data, "0", 1, a.model, "--preset", "tiny")
        raw = f"{exp.dir}/raw/day_1"
    exported = f"{exp.dir}/raw_features.pt"
    exp.recsearch("export", "--run", run, "--raw-features", data, "--out", exported)

    from recsearch.export.raw import raw_serving_model, shard_day_scores
    from recsearch.train.checkpoint import load_trained_model

    model, meta = load_trained_model(run)
    eager = raw_serving_model(model, meta, data)
    scripted = torch.jit.load(exported)
    lookup = torch.jit.script(eager.vocab)
    served, kept = [], []
    with torch.no_grad():  # the whole day, streamed: a raw Criteo day does not fit in memory
        for where, lines in batches(numbered_lines([raw]), 8192):
            served.append(scripted(*parse(lines, where)[:2]).double())
            kept += lines[: max(0, 50_000 - len(kept))]
    scores, expected = torch.cat(served), shard_day_scores(model, data, a.day)
    if scores.shape != expected.shape:
        raise SystemExit(
            f"bench_serving: {raw} has {len(scores):,} lines but shard day {a.day} {len(expected):,} rows "
            "(did preprocess skip bad lines?); pass the raw file of that day"
        )
    diff = float((scores - expected).abs().max()) if len(scores) else 0.0
    lines = kept
    dense, cat, _ = parse(lines)
    rng = np.random.default_rng(0)
    vocab_rows = int(eager.vocab.keys.numel() - 1)
    rows = [
        "| batch | TorchScript p50 ms | p99 ms | rows/s | eager p50 ms | p99 ms | rows/s "
        "| eager / TorchScript (p50) | lookup share |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    record = {}
    for b in a.batch:
        n = max(20, min(2000, 200_000 // b))  # timed calls per model and round
        ts: list[float] = []
        eg: list[float] = []
        lk: list[float] = []
        for r in range(a.rounds):
            idx = [rng.integers(0, len(lines), b) for _ in range(n)]
            batch = [(dense[i], cat[i]) for i in idx]
            cols = [(c.index_select(1, eager.columns),) for _, c in batch]
            _times(scripted, batch[:10])  # warm up (the profiling executor specializes)
            _times(eager, batch[:10])
            _times(lookup, cols[:10])
            order = [(scripted, ts, batch), (eager, eg, batch), (lookup, lk, cols)]
            for fn, acc, xs in order if r % 2 == 0 else order[::-1]:
                acc += _times(fn, xs)
        q = {k: np.percentile(v, [50, 99]) * 1e3 for k, v in {"ts": ts, "eager": eg, "lookup": lk}.items()}
        record[b] = {k: v.tolist() for k, v in q.items()}
        rows.append(
            f"| {b} | {q['ts'][0]:.3f} | {q['ts'][1]:.3f} | {b / np.mean(ts):,.0f} | {q['eager'][0]:.3f} "
            f"| {q['eager'][1]:.3f} | {b / np.mean(eg):,.0f} | {q['eager'][0] / q['ts'][0]:.2f} "
            f"| {q['lookup'][0] / q['ts'][0]:.0%} |"
        )
    about = (
        f"Run `{exp.dir}`: {model.spec['name']} ({len(model.spec['tables'])} tables, {vocab_rows:,} "
        f"vocabulary rows baked in, {Path(exported).stat().st_size / 2**20:.1f} MiB file), "
        f"{a.threads} thread(s), {a.rounds} alternating rounds. Every raw line of `{raw}` scored by the "
        f"file vs the model on shard day {a.day}: max |difference| {diff:.2e}."
    )
    scale = [
        "",
        "| vocabulary rows (all fields) | buffer MiB | lookup p50 ms at batch 1 / 64 / 512 |",
        "|---:|---:|---|",
    ]
    from recsearch.export.raw import VocabLookup

    for n in a.scale_rows:  # Criteo-Terabyte-sized tables: the lookup's memory and time
        fields = cat.shape[1]
        big = torch.jit.script(VocabLookup([rng.choice(2**32, n, replace=False) for _ in range(fields)]))
        mib = (big.keys.numel() * 8 + big.ids.numel() * 4) / 2**20
        p50 = []
        for b in a.batch:
            xs = [
                (torch.from_numpy(rng.integers(0, 2**32, (b, fields))),) for _ in range(max(20, 20_000 // b))
            ]
            _times(big, xs[:10])
            p50.append(np.median(_times(big, xs)) * 1e3)
        scale.append(f"| {n * fields:,} | {mib:,.0f} | {' / '.join(f'{t:.3f}' for t in p50)} |")
        record[f"lookup_{n}_rows_per_field"] = p50
        del big
    exp.write(
        "bench_serving.json", json.dumps({"about": about, "max_diff": diff, "ms_p50_p99": record}, indent=1)
    )
    print("\n".join([about, "", *rows, *scale]))


if __name__ == "__main__":
    main()
