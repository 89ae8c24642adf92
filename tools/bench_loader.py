"""Benchmark: loader batches/s vs what training consumes, on Zipf-skewed planted data.

    python tools/bench_loader.py [--rows-per-day 500000] [--batch-sizes 512,8192]

Makes 2 days with `recsearch synth --preset small` (Zipf-skewed ids) and preprocesses
them, then measures in one process:
  * recsearch ShardBatches (shuffled within day, the training setting, and unshuffled),
    batches/s;
  * TorchRec's InMemoryBinaryCriteoIterDataPipe on the same shards, batches/s;
  * training consumption: train steps/s of what `recsearch train --model dlrm` runs, the
    shared training loop (planner + DMP, fused in-backward Adagrad for the tables, Adam for
    the rest; 26 tables of dim 16, bottom 512-256-16, top 512-256-1) on the same batches,
    single process.
The loader must deliver >= 5x the batches/s that training consumes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import torch


def batches_per_s(make_iter, max_batches: int) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    for _ in make_iter():
        n += 1
        if n >= max_batches:
            break
    return n / (time.perf_counter() - start), n


def train_steps_per_s(batches: list, num_embeddings: list[int], names: list[str], steps: int) -> float:
    """Steps/s of recsearch's own trainer (the shared loop: planner + DMP, fused Adagrad for the
    tables, Adam for the rest) on its DLRM preset: what `recsearch train --model dlrm` consumes."""
    from recsearch.models.builder import build_model
    from recsearch.models.zoo import create_arch
    from recsearch.profile.throughput import samples_per_s, train_step_fn

    model = build_model(create_arch("dlrm"), names, num_embeddings, batches[0].dense_features.shape[1])
    rate = samples_per_s(train_step_fn(model), batches, steps, warmup=2)
    return rate / len(batches[0].labels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows-per-day", type=int, default=500_000)
    p.add_argument("--batch-sizes", default="512,8192")
    p.add_argument("--max-batches", type=int, default=400, help="batches timed per loader run")
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from torchrec.datasets.criteo import InMemoryBinaryCriteoIterDataPipe

    from recsearch.data.loader import ShardBatches
    from recsearch.data.preprocess import PreprocessOptions, preprocess
    from recsearch.data.shards import ShardInfo
    from recsearch.data.synth_days import synth

    torch.set_num_threads(2)
    work = tempfile.mkdtemp(prefix="bench_loader_")
    try:
        synth(f"{work}/raw", days=2, rows_per_day=a.rows_per_day, preset="small", seed=a.seed)
        preprocess(f"{work}/raw", f"{work}/shards", PreprocessOptions(days=(0, 1), vocab_days=(0,)))
        info = ShardInfo.load(f"{work}/shards")
        paths = {k: [info.paths(d, k) for d in (0, 1)] for k in ("dense", "sparse", "labels")}
        print(
            f"data: 2 days x {a.rows_per_day:,} rows, synth --preset small --seed {a.seed} (Zipf-skewed ids)"
        )
        print(
            f"{'batch':>6} {'recsearch b/s':>14} {'(no shuffle)':>13} {'torchrec b/s':>13} "
            f"{'train steps/s':>14} {'loader/train':>13}"
        )
        for bs in (int(x) for x in a.batch_sizes.split(",")):
            ours, n = batches_per_s(
                lambda bs=bs: iter(ShardBatches(info.root, [0, 1], bs, shuffle=True)), a.max_batches
            )
            ordered, _ = batches_per_s(
                lambda bs=bs: iter(ShardBatches(info.root, [0, 1], bs, shuffle=False)), a.max_batches
            )
            theirs, _ = batches_per_s(
                lambda bs=bs: iter(
                    InMemoryBinaryCriteoIterDataPipe(
                        "train", paths["dense"], paths["sparse"], paths["labels"], bs, 0, 1
                    )
                ),
                a.max_batches,
            )
            sample = [
                b for _, b in zip(range(8), ShardBatches(info.root, [0, 1], bs, shuffle=True), strict=False)
            ]
            train = train_steps_per_s(sample, info.num_embeddings, info.sparse_names, a.train_steps)
            print(
                f"{bs:>6} {ours:>14,.1f} {ordered:>13,.1f} {theirs:>13,.1f} {train:>14,.2f} "
                f"{ours / train:>12,.1f}x"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
