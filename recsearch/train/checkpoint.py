"""Self-describing checkpoints: sharded state via torch.distributed.checkpoint + meta JSON.

``RUN_DIR/checkpoint/`` holds the DCP files of the model and optimizer state and
``meta.json`` (step, architecture spec, config, dense width). It appears
atomically: written under a temporary name and renamed into place, so a killed
run resumes from the last complete checkpoint (a kill between the two renames of
a swap is finished on the next read). DCP's pickled metadata is read with an
allow-list (``safe_reader``), so loading a checkpoint runs no code from it.
"""

from __future__ import annotations

import os
import pickle
import shutil
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from iopath.common.file_io import g_pathmgr

from recsearch.dist.env import DistEnv
from recsearch.models.builder import ArchModel, build_model
from recsearch.train.safe_reader import SafeFileSystemReader, UnsafeCheckpointError
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import read_json, write_json

CHECKPOINT = "checkpoint"


def _local(path: str) -> str:
    return g_pathmgr.get_local_path(path)


def _state(model: torch.nn.Module, optimizer: Any) -> dict[str, Any]:
    state = {"model": model.state_dict()}
    if optimizer is not None:
        state["optim"] = optimizer.state_dict()
    return state


def save_checkpoint(
    run_dir: str,
    step: int,
    model: torch.nn.Module,
    optimizer: Any,
    meta: dict[str, Any],
    env: DistEnv,
    name: str = CHECKPOINT,
) -> None:
    """Save model (+ optimizer, unless None) state at ``step`` (collective: every rank calls it)."""
    final = _local(f"{run_dir}/{name}")
    tmp = _local(f"{run_dir}/.{name}-tmp")
    if env.is_main and os.path.exists(tmp):
        shutil.rmtree(tmp)
    dist.barrier()
    dcp.save(_state(model, optimizer), checkpoint_id=tmp)
    dist.barrier()
    if env.is_main:
        fault_point("checkpoint-state-written")
        write_json(f"{tmp}/meta.json", {**meta, "step": step})  # last: a complete checkpoint has it
        old = _local(f"{run_dir}/.{name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if os.path.exists(final):
            os.replace(final, old)
        fault_point("checkpoint-moved-aside")
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def _reader(path: str) -> SafeFileSystemReader:
    """A reader of the checkpoint at ``path`` whose metadata was checked first, so a hostile or
    damaged file is a one-line error here rather than deep inside DCP's collective load."""
    reader = SafeFileSystemReader(_local(path))
    try:
        reader.read_metadata()
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"{path}: {e}") from None
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as e:
        raise ValueError(
            f"{path}: the checkpoint's metadata is damaged ({e}); train into a new --out"
        ) from None
    return reader


def _recover(run_dir: str, name: str) -> None:
    """Finish a checkpoint swap that a kill interrupted between its two renames: the new
    checkpoint is used if it was complete (its meta.json is written last), else the old one."""
    final = _local(f"{run_dir}/{name}")
    if os.path.exists(final):
        return
    for candidate in (_local(f"{run_dir}/.{name}-tmp"), _local(f"{run_dir}/.{name}-old")):
        if os.path.exists(f"{candidate}/meta.json"):
            try:
                os.replace(candidate, final)
            except OSError:  # another rank of the job did it first
                pass
            return


def checkpoint_meta(run_dir: str, name: str = CHECKPOINT) -> dict[str, Any] | None:
    _recover(run_dir, name)
    path = f"{run_dir}/{name}/meta.json"
    return read_json(path) if g_pathmgr.exists(path) else None


def load_checkpoint(run_dir: str, model: torch.nn.Module, optimizer: Any, name: str = CHECKPOINT) -> int:
    """Restore model (+ optimizer, unless None) state in place; returns the checkpoint's step."""
    meta = checkpoint_meta(run_dir, name)
    if meta is None:
        return 0
    state = _state(model, optimizer)
    dcp.load(state, storage_reader=_reader(f"{run_dir}/{name}"))
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optim"])
    return int(meta["step"])


def load_trained_model(run_dir: str) -> tuple[ArchModel, dict[str, Any]]:
    """The unsharded model of a run, with its trained weights, and the checkpoint meta."""
    meta = checkpoint_meta(run_dir)
    if meta is None:
        raise ValueError(
            f"{run_dir} has no checkpoint: train into it first (recsearch train --out {run_dir})"
        )
    spec = meta["arch"]
    tables = spec["tables"]
    model = build_model(
        spec,
        [t["feature"] for t in tables],
        [t["num_embeddings"] for t in tables],
        meta["num_dense"],
        meta.get("dense_names"),  # runs before 2026-12-03 lack it (and select no field by name)
    )
    load_unsharded(run_dir, model)
    return model.eval(), meta


M = TypeVar("M", bound=torch.nn.Module)


def load_unsharded(run_dir: str, model: M) -> M:
    """Load a run's checkpointed weights into an unsharded copy of its model (any process,
    no process group: to read the tables' weights after a sharded run)."""
    state = {"model": model.state_dict()}
    dcp.load(state, storage_reader=_reader(f"{run_dir}/{CHECKPOINT}"), no_dist=True)
    model.load_state_dict(state["model"])
    return model
