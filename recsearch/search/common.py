"""Pieces several search methods build their results with: the base model a method searches
the embeddings of, one search phase trained on the train days with the shared loop, and the
retrain of a found architecture from scratch."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr

from recsearch.dist.env import init_distributed
from recsearch.models.zoo import create_arch
from recsearch.search.contract import SearchData, SearchOutput
from recsearch.train.config import BaseConfig, TrainConfig
from recsearch.train.loop import LoopHooks, TrainLoop
from recsearch.utils.fileio import read_json

RETRAIN_KEYS = (
    "auc",
    "logloss",
    "ne",
    "flops",
    "params",
    "dense_params",
    "embedding_params",
    "embedding_bytes",
    "steps",
)


def base_model_arch(name: str, emb_dim: int, hidden: list[int]) -> dict[str, Any]:
    """Zoo model ``name`` at ``emb_dim`` (``hidden``: its MLP widths; empty: the zoo's), or the
    architecture in JSON file ``name`` (e.g. another search's arch.json), whose interaction
    width must be ``emb_dim``; it keeps its own head (``hidden`` is for zoo models) and drops
    its embedding sizes (the caller searches them)."""
    if name.endswith(".json"):
        from recsearch.models.arch import load_arch

        spec = load_arch(name)
        width = spec["embedding"]["dim"]
        if width != emb_dim:
            raise ValueError(
                f"base_model {name} interacts at dim {width}, not {emb_dim}: set the width to {width}"
            )
        spec["embedding"] = {"dim": width}
        return spec
    extra: dict[str, Any] = {"hidden": tuple(hidden)} if hidden else {}
    try:
        return create_arch(name, emb_dim=emb_dim, **extra)
    except ValueError as e:
        raise ValueError(f"base_model={name}, base_hidden={hidden}: {e}") from None


def phase_loop(
    model: torch.nn.Module,
    config: BaseConfig,
    out: SearchOutput,
    run_dir: str,
    meta: dict[str, Any],
    hooks: LoopHooks,
    desc: str,
) -> TrainLoop:
    """The shared training loop of one search phase (``model`` built after seeding from
    ``config.seed``): sharded, resumable from ``run_dir`` when its ``meta`` matches."""
    return TrainLoop(
        model=model,
        config=config,
        env=init_distributed(),
        run_dir=run_dir,
        meta=meta,
        hooks=hooks,
        desc=desc,
        progress=out.launch.progress,
    )


def run_phase(loop: TrainLoop, config: BaseConfig, data: SearchData) -> tuple[int, float]:
    """``loop`` run over the train days (batches seeded by ``config.seed``): steps, seconds."""
    started = time.perf_counter()
    env = loop.env
    ran = loop.run(data.train_batches(config.batch_size, config.seed, env.rank, env.world_size))
    return ran.steps, time.perf_counter() - started


def retrain(
    arch: dict[str, Any],
    recipe: TrainConfig,
    seed: int,
    data: SearchData,
    out: SearchOutput,
    name: str = "retrain",
) -> dict[str, Any]:
    """``arch`` trained from scratch on the train days with ``recipe`` (seeded ``seed``) into
    ``DIR/name``, scored on the validation day; a finished run is read back, not retrained."""
    from recsearch.train.trainer import train

    run_dir = out.path(name)
    done = f"{run_dir}/metrics.json"
    if g_pathmgr.exists(done):
        m = read_json(done)
    else:
        seeded = dataclasses.replace(recipe, seed=seed)
        m = train(
            arch, data.root, data.train_days, data.val_day, run_dir, seeded, progress=out.launch.progress
        )
    return {k: m[k] for k in RETRAIN_KEYS if k in m}


def similar_flops(
    sample: Callable[[], dict[str, Any]],
    found: dict[str, Any],
    info: Any,
    emb_dim: int,
    band: tuple[float, float] = (0.7, 1.3),
    tries: int = 300,
) -> dict[str, Any]:
    """The first sampled architecture whose interaction FLOPs per example are within ``band`` of
    the found one's (else the closest of ``tries``): chance at about the same cost."""
    from recsearch.profile.counts import interaction_flops

    fields = info.sparse_names + info.jagged_names
    shape = (len(info.dense_names), len(fields), emb_dim)

    def flops(spec: dict[str, Any]) -> float:
        return interaction_flops(spec, *shape, fields, info.dense_names)

    target = flops(found)
    best, best_gap = None, float("inf")
    for _ in range(tries):
        spec = sample()
        ratio = flops(spec) / target if target else 1.0
        if band[0] <= ratio <= band[1]:
            return spec
        gap = abs(np.log(max(ratio, 1e-12)))
        if gap < best_gap:
            best, best_gap = spec, gap
    assert best is not None
    return best
