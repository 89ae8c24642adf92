"""First-order bilevel search in the shared loop: after each weight step on a train batch,
one step of the architecture parameters on a batch of the validation day (DARTS's
first-order approximation, as PROFIT's Algorithm 1 and DNIS's Algorithm 1 use it).

The validation forward looks embeddings up without autograd (the model's
``embedding_grad=False``), so its backward never fires the fused embedding optimizer:
tables learn from train batches only. Validation batches are drawn in a fixed order
and counted in the checkpoint, so a resumed search continues where it stopped.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchrec.datasets.utils import Batch
from torchrec.optim.keyed import KeyedOptimizer, KeyedOptimizerWrapper

from recsearch.data.loader import ShardBatches
from recsearch.search.contract import SearchData
from recsearch.train.loop import LoopHooks, TrainLoop


class ValidationSteps(LoopHooks):
    """Architecture steps on the validation day; a method says which parameters
    (:meth:`arch_parameters`), may transform their gradients (:meth:`before_arch_step`) or
    project them after the step (:meth:`after_arch_step`), and what to record.

    Args:
        data: the search's shards (the validation day).
        batch_size: rows per validation batch.
        seed: the validation order's seed.
        lr: Adam learning rate of the architecture parameters.
        log_every: record the history every this many steps (and at the last).
    """

    def __init__(self, data: SearchData, batch_size: int, seed: int, lr: float, log_every: int) -> None:
        self.val = ShardBatches(data.root, [data.val_day], batch_size, seed=seed)
        self.lr, self.log_every = lr, log_every
        self.drawn = 0
        self._it: Any = None
        self.history: list[dict[str, Any]] = []

    def arch_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        raise NotImplementedError

    def before_arch_step(self, model: nn.Module) -> None:
        """Called with the architecture gradients computed, before the optimizer step."""

    def after_arch_step(self, model: nn.Module) -> None:
        """Called after the optimizer step (e.g. to clip the parameters into their range)."""

    def record(self, model: nn.Module) -> dict[str, Any]:
        """Extra values of a history entry."""
        return {}

    def optimizers(self, model: nn.Module) -> dict[str, KeyedOptimizer]:
        params = self.arch_parameters(model)
        lr = self.lr
        self.arch_opt = KeyedOptimizerWrapper(params, lambda ps: torch.optim.Adam(ps, lr=lr))
        return {"arch": self.arch_opt}

    def _next_val(self) -> Batch:
        n = len(self.val)
        if self._it is None or self.drawn % n == 0:
            self.val.epoch = self.drawn // n
            self._it = iter(self.val)
            for _ in range(self.drawn % n):
                next(self._it)
        self.drawn += 1
        return next(self._it)

    def after_step(self, loop: TrainLoop, step: int, extra: list[Batch]) -> dict[str, Any]:
        b = self._next_val().to(loop.env.device)
        loop.zero_grad()
        logits = loop.dmp(b.dense_features, b.sparse_features, embedding_grad=False)
        arch_loss = F.binary_cross_entropy_with_logits(logits, b.labels.float())
        arch_loss.backward()
        self.before_arch_step(loop.module)
        self.arch_opt.step()
        self.after_arch_step(loop.module)
        if step % self.log_every == 0 or step + 1 == loop.total_steps:
            self.history.append(
                {"step": step + 1, "val_logloss": float(arch_loss.detach()), **self.record(loop.module)}
            )
        return {"arch_loss": arch_loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"drawn": self.drawn, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.drawn = int(state.get("drawn", 0))
        self.history = list(state.get("history", []))
        self._it = None
