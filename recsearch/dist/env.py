"""Process-group set-up: torchrun/torchx (env://) or a single local process."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_world_size: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed() -> DistEnv:
    """Join the job's process group (gloo on CPU, nccl on GPU).

    Under torchrun/torchx the rendezvous comes from the environment; otherwise a
    one-process group on a free local port, so DistributedModelParallel and its
    planner run the same way on one process.
    """
    use_cuda = torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            dist.init_process_group(backend=backend)
        else:  # an explicit init_method: no MASTER_* variables leak into child processes
            init = f"tcp://127.0.0.1:{_free_port()}"
            dist.init_process_group(backend=backend, init_method=init, rank=0, world_size=1)
    rank, world = dist.get_rank(), dist.get_world_size()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if use_cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return DistEnv(rank=rank, world_size=world, local_world_size=local_world, device=device, backend=backend)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
