"""The trainer: one pass over the train days with DMP-sharded TorchRec embeddings.

Embedding tables train with a fused optimizer applied in backward (Adagrad, lr
0.04 by default), dense parameters with Adam (lr 1e-3), both with linear
warm-up; days in order, rows shuffled within a day, a single epoch as the
papers do. Runs on one process or under torchrun/torchx with N processes.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from iopath.common.file_io import g_pathmgr
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper
from torchrec.optim.optimizers import in_backward_optimizer_filter
from tqdm import tqdm

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo
from recsearch.dist.env import DistEnv, init_distributed
from recsearch.dist.sharding import shard_model
from recsearch.models.builder import build_model
from recsearch.profile.counts import flops_per_example, lookup_bytes_per_example, param_counts
from recsearch.train.checkpoint import checkpoint_meta, load_checkpoint, save_checkpoint
from recsearch.train.config import TrainConfig
from recsearch.train.metrics import CTRMetrics
from recsearch.utils.fileio import read_json, write_json


def _summary_writer(run_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: scalars go to metrics.json only
        return None
    return SummaryWriter(log_dir=f"{run_dir}/tensorboard")


def _plan_summary(plan: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for module_plan in plan.plan.values():
        for table, ps in module_plan.items():
            ranks = sorted({int(r) for r in (ps.ranks or [])})
            out[table] = {"sharding_type": ps.sharding_type, "kernel": ps.compute_kernel, "ranks": ranks}
    return out


def evaluate(model: torch.nn.Module, batches: ShardBatches, env: DistEnv) -> dict[str, float]:
    metrics = CTRMetrics()
    model.eval()
    with torch.no_grad():
        for b in batches:
            b = b.to(env.device)
            metrics.update(model(b.dense_features, b.sparse_features), b.labels)
    model.train()
    return metrics.compute()


def train(
    spec: dict[str, Any],
    data: str,
    train_days: list[int],
    eval_day: int,
    run_dir: str,
    config: TrainConfig,
    env: DistEnv | None = None,
) -> dict[str, Any]:
    """Train ``spec`` on ``train_days``, evaluate on ``eval_day``; write ``run_dir/metrics.json``."""
    env = env or init_distributed()
    info = ShardInfo.load(data)
    info.check_days([*train_days, eval_day])
    torch.manual_seed(config.seed)
    features = info.sparse_names + info.jagged_names
    model = build_model(spec, features, info.num_embeddings, len(info.dense_names))
    probe = next(iter(ShardBatches(data, [eval_day], 256, shuffle=False)))
    counts = param_counts(model)
    flops = flops_per_example(model, probe.dense_features, probe.sparse_features)
    lookup_bytes = lookup_bytes_per_example(model, probe.sparse_features)

    dmp, plan = shard_model(model, env, config.emb_optimizer, config.emb_lr, config.sharding_types)
    dense_params = dict(in_backward_optimizer_filter(dmp.named_parameters()))
    dense_opt = KeyedOptimizerWrapper(dense_params, lambda p: torch.optim.Adam(p, lr=config.dense_lr))
    optimizer = CombinedOptimizer([dmp.fused_optimizer, dense_opt])
    base_lrs = [g["lr"] for g in optimizer.param_groups]

    train_batches = ShardBatches(
        data,
        train_days,
        config.batch_size,
        env.rank,
        env.world_size,
        shuffle=config.shuffle,
        seed=config.seed,
    )
    steps = len(train_batches) if not config.max_steps else min(config.max_steps, len(train_batches))
    if steps == 0:
        raise ValueError(f"train days {train_days} hold fewer rows than one batch per rank; lower batch_size")
    if env.is_main:
        g_pathmgr.mkdirs(run_dir)
    meta = {
        "arch": model.spec,
        "config": dataclasses.asdict(config),
        "num_dense": len(info.dense_names),
        "dense_transform": info.manifest.get("dense_transform"),
        "train_days": train_days,
    }
    previous = checkpoint_meta(run_dir)
    if previous is not None and (previous["arch"] != meta["arch"] or previous["train_days"] != train_days):
        raise ValueError(
            f"{run_dir} holds a checkpoint of another model or other train days; "
            "use a new --out to start over"
        )
    start_step = 0
    if previous is not None:
        dense_opt.init_state()  # Adam's state is created lazily; it must exist to be restored
        start_step = load_checkpoint(run_dir, dmp, optimizer)
    if env.is_main and start_step:
        print(f"resuming from the checkpoint at step {start_step} of {steps}")
    writer = _summary_writer(run_dir) if env.is_main else None
    loss_fn = torch.nn.BCEWithLogitsLoss()
    bar = tqdm(
        total=steps,
        initial=start_step,
        desc="train",
        unit="step",
        disable=not env.is_main,
        dynamic_ncols=True,
    )
    samples, start = 0, time.perf_counter()
    dmp.train()
    for step, batch in enumerate(train_batches):
        if step >= steps:
            break
        if step < start_step:
            continue
        scale = min(1.0, (step + 1) / max(config.warmup_steps, 1))
        for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = lr * scale
        # zero_grad also hands the new learning rate to the fused embedding kernels, which
        # capture it in forward: it must come before the forward pass
        optimizer.zero_grad()
        batch = batch.to(env.device)
        logits = dmp(batch.dense_features, batch.sparse_features)
        loss = loss_fn(logits, batch.labels.float())
        loss.backward()
        optimizer.step()
        samples += len(batch.labels) * env.world_size
        bar.update(1)
        if step % config.log_every == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if writer is not None:
                writer.add_scalar("train/loss", loss.item(), step)
        if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 and step + 1 < steps:
            save_checkpoint(run_dir, step + 1, dmp, optimizer, meta, env)
    elapsed = time.perf_counter() - start
    bar.close()
    if start_step < steps:
        save_checkpoint(run_dir, steps, dmp, optimizer, meta, env)

    eval_batches = ShardBatches(
        data, [eval_day], config.eval_batch_size, env.rank, env.world_size, shuffle=False
    )
    result: dict[str, Any] = evaluate(dmp, eval_batches, env)
    result.update(
        flops=flops,
        lookup_bytes=lookup_bytes,
        **counts,
        samples_per_s=samples / elapsed if samples else _previous_speed(run_dir),
        steps=steps,
        world_size=env.world_size,
        train_days=train_days,
        eval_day=eval_day,
        model=spec.get("name", "model"),
        sharding_plan=_plan_summary(plan),
    )
    if config.baseline_run:
        baseline = read_json(f"{config.baseline_run}/metrics.json")
        result["relative_ne"] = result["ne"] / baseline["ne"]
        result["baseline_run"] = config.baseline_run
    if env.is_main:
        write_json(f"{run_dir}/metrics.json", result)
        write_json(f"{run_dir}/arch.json", model.spec)
        write_json(f"{run_dir}/config.json", dataclasses.asdict(config))
        if writer is not None:
            for key in ("auc", "logloss", "ne"):
                writer.add_scalar(f"eval/{key}", result[key], steps)
            writer.close()
    return result


def _previous_speed(run_dir: str) -> float | None:
    """Throughput of the run that did the training, when this call only evaluated."""
    path = f"{run_dir}/metrics.json"
    return read_json(path).get("samples_per_s") if g_pathmgr.exists(path) else None
