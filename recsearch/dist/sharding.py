"""Shard a model with TorchRec: in-backward embedding optimizer, planner, DMP.

On CPU the planner would put small tables on ``data_parallel`` + ``dense``; such
tables leave the fused in-backward embedding optimizer and are silently trained
by the dense optimizer instead. The planner is therefore only offered sharding
types whose kernel is ``fused``, so every table trains with the configured
embedding optimizer (a test checks each table under each allowed type).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.optim import _apply_optimizer_in_backward
from torchrec.distributed.embedding_types import EmbeddingComputeKernel
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
from torchrec.distributed.model_parallel import DefaultDataParallelWrapper, DistributedModelParallel
from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
from torchrec.distributed.planner.types import ParameterConstraints
from torchrec.distributed.types import ShardingPlan, ShardingType
from torchrec.modules.embedding_modules import EmbeddingBagCollection

from recsearch.dist.env import DistEnv

EMB_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adagrad": torch.optim.Adagrad,
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
}
# Sharding types with a fused kernel (in-backward optimizer) on each device kind.
FUSED_SHARDING_TYPES = {
    "cpu": [ShardingType.TABLE_WISE.value, ShardingType.COLUMN_WISE.value, ShardingType.TABLE_COLUMN_WISE.value],
    "cuda": [
        ShardingType.TABLE_WISE.value,
        ShardingType.COLUMN_WISE.value,
        ShardingType.TABLE_COLUMN_WISE.value,
        ShardingType.ROW_WISE.value,
        ShardingType.TABLE_ROW_WISE.value,
    ],
}


def allowed_sharding_types(device: torch.device, requested: Sequence[str]) -> list[str]:
    """Validate requested sharding types against those with a fused kernel here."""
    fused = FUSED_SHARDING_TYPES["cuda" if device.type == "cuda" else "cpu"]
    bad = [s for s in requested if s not in fused]
    if bad:
        raise ValueError(
            f"sharding type(s) {bad} are not allowed on {device.type}: every table must train with the "
            f"fused embedding optimizer; choose from {fused}"
        )
    return list(requested)


def embedding_collections(model: nn.Module) -> list[tuple[str, EmbeddingBagCollection]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, EmbeddingBagCollection)]


def shard_model(
    model: nn.Module,
    env: DistEnv,
    emb_optimizer: str,
    emb_lr: float,
    sharding_types: Sequence[str],
    dynamic_graph: bool = False,
) -> tuple[DistributedModelParallel, ShardingPlan]:
    """Attach the embedding optimizer in backward, plan with constraints, wrap in DMP.

    ``dynamic_graph``: the dense part uses other parameters from step to step (a supernet
    sampling a path per step), so data parallelism must not assume a static graph."""
    if emb_optimizer not in EMB_OPTIMIZERS:
        raise ValueError(f"unknown embedding optimizer {emb_optimizer!r}; choose from {sorted(EMB_OPTIMIZERS)}")
    types = allowed_sharding_types(env.device, sharding_types)
    constraints: dict[str, ParameterConstraints] = {}
    for _, ebc in embedding_collections(model):
        _apply_optimizer_in_backward(EMB_OPTIMIZERS[emb_optimizer], ebc.parameters(), {"lr": emb_lr})
        for cfg in ebc.embedding_bag_configs():
            constraints[cfg.name] = ParameterConstraints(
                sharding_types=types, compute_kernels=[EmbeddingComputeKernel.FUSED.value]
            )
    sharders = [EmbeddingBagCollectionSharder()]
    with _quiet_torchrec():
        topology = Topology(
            world_size=env.world_size, local_world_size=env.local_world_size, compute_device=env.device.type
        )
        planner = EmbeddingShardingPlanner(topology=topology, constraints=constraints)
        plan = planner.collective_plan(model, sharders, dist.GroupMember.WORLD)
        wrapper = DefaultDataParallelWrapper(static_graph=not dynamic_graph, find_unused_parameters=dynamic_graph)
        dmp = DistributedModelParallel(
            module=model,
            device=env.device,
            plan=plan,
            sharders=sharders,  # type: ignore[arg-type]
            data_parallel_wrapper=wrapper,
        )
    return dmp, plan


@contextmanager
def _quiet_torchrec() -> Iterator[None]:
    """TorchRec's own deprecation notices and planner hints (a directly built Topology, the
    dense-size estimate of a dry run, DDP's broadcast_buffers) say nothing a user can act on."""
    planner_log = logging.getLogger("torchrec.distributed.planner")
    level = planner_log.level
    planner_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="torchrec")
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*")
            yield
    finally:
        planner_log.setLevel(level)
