"""Benchmark: training samples/s of recsearch's DLRM preset vs TorchRec's DLRM, same batches.

    python tools/bench_train.py [--rows-per-day 200000] [--batch-size 4096] [--steps 30]

Data: 2 days of `recsearch synth --preset small` (Zipf-skewed ids: realistic reuse),
preprocessed. Both models have 26 tables of dim 16, bottom MLP 512-256-16, dot-product
interaction, top MLP 512-256-1, and are trained the TorchRec way: DistributedModelParallel
with the planner, Adagrad (lr 0.04) fused and applied in backward for the tables, Adam
(1e-3) for dense parameters: both step through recsearch's shared training loop, on the same
pre-loaded batches, in one process. Also measured:
the dense-compute limit, the same recsearch model's step time with the embedding cost
removed (the interaction graph fed fixed pooled embeddings).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import warnings

import torch

from recsearch.profile.throughput import samples_per_s, train_step_fn
from recsearch.train.loop import LoopHooks


class FlatLogits(LoopHooks):
    """TorchRec's DLRM returns (B, 1) logits; the loop's loss takes (B,)."""

    def loss(self, loop, batch):  # type: ignore[no-untyped-def]
        logits = loop.dmp(batch.dense_features, batch.sparse_features).reshape(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.labels.float())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows-per-day", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from torchrec.models.dlrm import DLRM
    from torchrec.modules.embedding_configs import EmbeddingBagConfig
    from torchrec.modules.embedding_modules import EmbeddingBagCollection

    from recsearch.data.loader import ShardBatches
    from recsearch.data.preprocess import PreprocessOptions, preprocess
    from recsearch.data.shards import ShardInfo
    from recsearch.data.synth_days import synth
    from recsearch.models.builder import build_model
    from recsearch.models.zoo import create_arch

    work = tempfile.mkdtemp(prefix="bench_train_")
    try:
        synth(f"{work}/raw", days=2, rows_per_day=a.rows_per_day, preset="small", seed=a.seed)
        preprocess(f"{work}/raw", f"{work}/shards", PreprocessOptions(days=(0, 1), vocab_days=(0,)))
        info = ShardInfo.load(f"{work}/shards")
        batches = list(ShardBatches(info.root, [0, 1], a.batch_size, shuffle=True))[: a.steps + 5]
        names = info.sparse_names

        torch.manual_seed(0)
        ours = build_model(create_arch("dlrm"), names, info.num_embeddings, 13)
        torch.manual_seed(0)
        theirs = DLRM(
            embedding_bag_collection=EmbeddingBagCollection(
                tables=[
                    EmbeddingBagConfig(name=f"t_{n}", embedding_dim=16, num_embeddings=k, feature_names=[n])
                    for n, k in zip(names, info.num_embeddings, strict=True)
                ]
            ),
            dense_in_features=13,
            dense_arch_layer_sizes=[512, 256, 16],
            over_arch_layer_sizes=[512, 256, 1],
        )
        n_ours = sum(p.numel() for p in ours.parameters())
        n_theirs = sum(p.numel() for p in theirs.parameters())
        # dense-compute limit: our interaction graph on fixed pooled embeddings
        torch.manual_seed(0)
        limit_model = build_model(create_arch("dlrm"), names, info.num_embeddings, 13).interaction
        fixed = torch.randn(a.batch_size, len(names), 16)
        limit_opt = torch.optim.Adam(limit_model.parameters(), lr=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def limit_step(b) -> None:
            limit_opt.zero_grad()
            loss_fn(limit_model(b.dense_features, fixed[: len(b.labels)]), b.labels.float()).backward()
            limit_opt.step()

        steps = {  # both on the shared training loop, exactly as `recsearch train` steps
            "torchrec DLRM": train_step_fn(theirs, hooks=FlatLogits()),
            "recsearch dlrm": train_step_fn(ours),
            "dense-compute limit": limit_step,
        }
        rates = {name: 0.0 for name in steps}
        names = list(steps)
        ratios = []  # recsearch / torchrec within each round: both measured back to back
        for r in range(a.rounds):  # interleaved rounds in rotating order: noisy machines
            this_round = {}
            for name in names[r % len(names) :] + names[: r % len(names)]:
                this_round[name] = samples_per_s(steps[name], batches, a.steps)
                rates[name] = max(rates[name], this_round[name])
            ratios.append(this_round["recsearch dlrm"] / this_round["torchrec DLRM"])
        ratios.sort()
        print(
            f"data: 2 days x {a.rows_per_day:,} rows, synth --preset small --seed {a.seed} (Zipf ids); "
            f"batch {a.batch_size}, best of {a.rounds} rounds x {a.steps} steps, "
            f"{torch.get_num_threads()} threads"
        )
        print(f"params: recsearch {n_ours:,}, torchrec {n_theirs:,}")
        for name, r in rates.items():
            print(f"{name:<22}{r:>12,.0f} samples/s")
        print(
            f"per-round recsearch / torchrec: median {ratios[len(ratios) // 2]:.2f}x "
            f"(min {ratios[0]:.2f}x, max {ratios[-1]:.2f}x over {len(ratios)} rounds)"
        )
        print(
            f"best-of recsearch / torchrec: {rates['recsearch dlrm'] / rates['torchrec DLRM']:.2f}x; "
            f"recsearch / dense-compute limit: {rates['recsearch dlrm'] / rates['dense-compute limit']:.0%}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
