"""``recsearch train``: a zoo model or an architecture JSON on DMP-sharded TorchRec tables.

Embedding tables train with a fused optimizer applied in backward (Adagrad, lr
0.04 by default), dense parameters with Adam (lr 1e-3), both with linear
warm-up; days in order, rows shuffled within a day, one epoch as the papers do
(more with early stopping on a validation day). The loop is the shared
``recsearch.train.loop``. Runs on one process or under torchrun/torchx with N processes.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from typing import Any

import torch
from iopath.common.file_io import g_pathmgr

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo
from recsearch.dist.env import DistEnv, init_distributed
from recsearch.models.builder import build_model
from recsearch.profile.counts import model_counts
from recsearch.train.config import TrainConfig
from recsearch.train.loop import TrainLoop, evaluate
from recsearch.utils.fileio import check_out_dir, read_json, write_json

RUN_FILES = ("checkpoint", "best", "tensorboard", "metrics.json", "arch.json", "config.json")


def _plan_summary(plan: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for module_plan in plan.plan.values():
        for table, ps in module_plan.items():
            ranks = sorted({int(r) for r in (ps.ranks or [])})
            out[table] = {"sharding_type": ps.sharding_type, "kernel": ps.compute_kernel, "ranks": ranks}
    return out


def clear_run(run_dir: str) -> None:
    """Remove what a run wrote into ``run_dir`` (``--restart``); other files stay."""
    for name in RUN_FILES:
        path = g_pathmgr.get_local_path(f"{run_dir}/{name}")
        if g_pathmgr.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif g_pathmgr.exists(path):
            g_pathmgr.rm(path)


def train(
    spec: dict[str, Any],
    data: str,
    train_days: list[int],
    eval_day: int,
    run_dir: str,
    config: TrainConfig,
    env: DistEnv | None = None,
    val_day: int | None = None,
    progress: bool = True,
    restart: bool = False,
) -> dict[str, Any]:
    """Train ``spec`` on ``train_days``, evaluate on ``eval_day``; write ``run_dir/metrics.json``.

    With ``val_day`` and ``config.epochs`` > 1, training stops early on the validation
    day's logloss and keeps the best epoch. ``restart`` first deletes an earlier run in ``run_dir``.
    """
    env = env or init_distributed()
    if val_day is not None and val_day in train_days:
        raise ValueError(f"--val-day {val_day} is also a train day; pick a held-out day")
    if env.is_main:
        check_out_dir(run_dir)
        if restart:
            clear_run(run_dir)
    torch.distributed.barrier()
    if eval_day in train_days and env.is_main:
        print(
            f"warning: eval day {eval_day} is also a train day: its metrics are not held out", file=sys.stderr
        )
    info = ShardInfo.load(data)
    info.check_days([*train_days, eval_day, *([] if val_day is None else [val_day])])
    for day, role in [(eval_day, "eval day"), *([] if val_day is None else [(val_day, "val day")])]:
        if info.days[day] == 0:
            raise ValueError(f"{role} {day} has no rows to evaluate on; pick another day")
    if not sum(info.days[d] for d in train_days):
        raise ValueError(f"train days {train_days} hold no rows; pick other days")
    torch.manual_seed(config.seed)
    features = info.sparse_names + info.jagged_names
    model = build_model(spec, features, info.num_embeddings, len(info.dense_names), info.dense_names)
    counts = model_counts(model, data, eval_day)
    meta = {
        "arch": model.spec,
        "config": dataclasses.asdict(config),
        "num_dense": len(info.dense_names),
        "dense_names": info.dense_names,
        "dense_transform": info.manifest.get("dense_transform"),
        "vocab_key": info.manifest.get("vocab_key"),  # which vocabularies the ids come from (export)
        "train_days": train_days,
        "val_day": val_day,
    }
    loop = TrainLoop(model=model, config=config, env=env, run_dir=run_dir, meta=meta, progress=progress)

    def batches(epoch: int) -> ShardBatches:
        return ShardBatches(
            data,
            train_days,
            config.batch_size,
            env.rank,
            env.world_size,
            shuffle=config.shuffle,
            seed=config.seed,
            epoch=epoch,
        )

    def day_batches(day: int) -> ShardBatches:
        return ShardBatches(data, [day], config.eval_batch_size, env.rank, env.world_size, shuffle=False)

    started = time.perf_counter()
    ran = loop.run(batches, None if val_day is None else lambda: day_batches(val_day))
    seconds = time.perf_counter() - started  # this process's training (a resumed run: its remainder)
    result: dict[str, Any] = evaluate(loop.dmp, day_batches(eval_day), env, f"eval day {eval_day}")
    result.update(
        **counts,
        samples_per_s=ran.samples_per_s or _previous_speed(run_dir),
        train_seconds=seconds,
        threads=torch.get_num_threads(),  # another count can change the last digits (summation order)
        steps=ran.steps,
        world_size=env.world_size,
        train_days=train_days,
        eval_day=eval_day,
        model=spec.get("name", "model"),
        sharding_plan=_plan_summary(loop.plan),
    )
    if val_day is not None:
        result.update(val_day=val_day, epochs=ran.epochs, best_epoch=ran.best_epoch)
        result["stopped_early"] = ran.stopped_early
    if config.baseline_run:
        baseline = read_json(f"{config.baseline_run}/metrics.json")
        result["relative_ne"] = result["ne"] / baseline["ne"]
        result["baseline_run"] = config.baseline_run
    loop.log_scalars("eval", {k: result[k] for k in ("auc", "logloss", "ne")}, ran.steps)
    loop.close()
    if env.is_main:
        write_json(f"{run_dir}/metrics.json", result)
        write_json(f"{run_dir}/arch.json", model.spec)
        write_json(f"{run_dir}/config.json", dataclasses.asdict(config))
    return result


def _previous_speed(run_dir: str) -> float | None:
    """Throughput of the run that did the training, when this call only evaluated."""
    path = f"{run_dir}/metrics.json"
    return read_json(path).get("samples_per_s") if g_pathmgr.exists(path) else None
