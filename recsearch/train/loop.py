"""The one training loop: ``recsearch train`` and every supernet's training run on it.

:class:`TrainLoop` shards a model with TorchRec (planner + DMP, fused in-backward
embedding optimizer), trains its dense parameters with Adam, and owns what every
training needs once: the zero-grad / forward / backward / step order, learning-rate
warm-up and decay, gradient clipping, the step budget, epochs with early stopping on
a validation day, periodic checkpoints with exact resume (optimizer state included),
the progress bar and TensorBoard scalars.

A search method changes the loop only through :class:`LoopHooks` (torchtitan's
``Trainer.train_step``): extra optimizers (architecture parameters), work before a
step (sampling a subnet, seeding noise), the loss, and work after the weight step on
further batches of the same step (a bilevel architecture step).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from iopath.common.file_io import g_pathmgr
from torch import nn
from torchrec.datasets.utils import Batch
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizer, KeyedOptimizerWrapper
from torchrec.optim.optimizers import in_backward_optimizer_filter
from tqdm import tqdm

from recsearch.dist.env import DistEnv
from recsearch.dist.sharding import shard_model
from recsearch.train.checkpoint import checkpoint_meta, load_checkpoint, save_checkpoint
from recsearch.train.config import BaseConfig
from recsearch.train.metrics import CTRMetrics
from recsearch.utils.config import differing_keys
from recsearch.utils.faults import fault_point

BEST = "best"


class LoopHooks:
    """What a method changes in the loop; the defaults train a CTR model on logloss.

    Attributes:
        batches_per_step: batches drawn per step; the first feeds the weight step, the
            rest go to :meth:`after_step` (e.g. 2 for an alternating bilevel search).
    """

    batches_per_step: int = 1
    dynamic_graph: bool = False  # the model uses other dense parameters from step to step

    def optimizers(self, model: nn.Module) -> dict[str, KeyedOptimizer]:
        """Extra optimizers over parameters the model registers itself (e.g. its
        ``arch_parameters()``); the weight optimizer leaves those parameters alone."""
        return {}

    def before_step(self, loop: TrainLoop, step: int) -> None:
        """Called before the learning rates are set and gradients zeroed."""

    def loss(self, loop: TrainLoop, batch: Batch) -> torch.Tensor:
        logits = loop.dmp(batch.dense_features, batch.sparse_features)
        return F.binary_cross_entropy_with_logits(logits, batch.labels.float())

    def after_step(self, loop: TrainLoop, step: int, extra: list[Batch]) -> dict[str, Any]:
        """Called after the weight step with the step's other batches; returns scalars to log
        (floats or 0-d tensors, read only when logged)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state saved in each checkpoint (history, counters)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class LoopResult:
    steps: int  # steps of the whole run (the budget)
    start_step: int  # where this call started (> 0 after a resume)
    samples_per_s: float | None  # of this call's training, across ranks
    epochs: list[dict[str, Any]] = field(default_factory=list)  # per finished epoch: val metrics
    best_epoch: int | None = None
    stopped_early: bool = False


def _dense_optimizer(params: Any, config: BaseConfig) -> torch.optim.Optimizer:
    if config.dense_optimizer == "adagrad":  # eps as NASRec's released code: steadier first steps
        return torch.optim.Adagrad(params, lr=config.dense_lr, eps=1e-2)
    if config.dense_optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.dense_lr)
    return torch.optim.Adam(params, lr=config.dense_lr)


def evaluate(
    model: nn.Module, batches: Iterable[Batch], env: DistEnv | None = None, what: str = "the evaluation data"
) -> dict[str, float]:
    """AUC, logloss and NE of ``model`` over ``batches`` (eval mode, no gradients); ``env``
    None: one process on the CPU."""
    device = env.device if env is not None else torch.device("cpu")
    metrics = CTRMetrics()
    was_training = model.training
    model.eval()
    rows = 0
    with torch.no_grad():
        for b in batches:
            b = b.to(device)
            metrics.update(model(b.dense_features, b.sparse_features), b.labels)
            rows += len(b.labels)
    model.train(was_training)
    if rows == 0:
        ranks = f" (on this rank of {env.world_size})" if env is not None and env.world_size > 1 else ""
        raise ValueError(f"{what} has no rows to evaluate on{ranks}")
    return metrics.compute()


class StopRequests:
    """SIGINT / SIGTERM during training: finish the step, checkpoint, then stop.

    The first signal only sets a flag (a second one acts at once, as usual); the loop checks
    it between steps. With several ranks the flag is agreed on with an all-reduce each step,
    so every rank stops after the same step and the checkpoint (a collective) completes.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, env: DistEnv) -> None:
        self.env, self.signal_name = env, ""
        self._flag = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self._flag, self.signal_name = True, signal.Signals(signum).name
        for sig, handler in self._previous.items():  # a second signal is not deferred
            signal.signal(sig, handler)

    def requested(self) -> bool:
        if self.env.world_size == 1:
            return self._flag
        flag = torch.tensor([1.0 if self._flag else 0.0], device=self.env.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() and not self.signal_name:
            self.signal_name = "a signal on another rank"
        return bool(flag.item())

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _summary_writer(run_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: scalars go to the JSON outputs only
        return None
    return SummaryWriter(log_dir=f"{run_dir}/tensorboard")


class TrainLoop:
    """Shard ``model`` and train it on a stream of batches.

    Args:
        model: the unsharded model (TorchRec ``EmbeddingBagCollection``s inside).
        config: the shared training settings.
        env: this process's distributed environment.
        run_dir: where checkpoints and TensorBoard scalars go.
        meta: what identifies this run (architecture, config, days); a checkpoint in
            ``run_dir`` with other meta is refused, naming the differing keys.
        hooks: the method's changes to the loop.
        desc: the progress bar's label.
        progress: show the progress bar (on the main rank).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        config: BaseConfig,
        env: DistEnv,
        run_dir: str,
        meta: dict[str, Any],
        hooks: LoopHooks | None = None,
        desc: str = "train",
        progress: bool = True,
    ) -> None:
        self.config, self.env, self.run_dir, self.meta = config, env, run_dir, meta
        self.hooks = hooks or LoopHooks()
        self.desc, self.progress = desc, progress
        self.previous = self._previous_meta()  # before any work: a different run is refused at once
        self.dmp, self.plan = shard_model(
            model,
            env,
            config.emb_optimizer,
            config.emb_lr,
            config.sharding_types,
            dynamic_graph=self.hooks.dynamic_graph,
        )
        self.module: nn.Module = self.dmp.module  # the model inside DMP (sharded tables)
        self.extra = self.hooks.optimizers(self.module)
        owned = {id(p) for opt in self.extra.values() for p in opt.params.values()}
        dense = {
            k: p for k, p in in_backward_optimizer_filter(self.dmp.named_parameters()) if id(p) not in owned
        }
        self.dense_opt = KeyedOptimizerWrapper(dense, lambda ps: _dense_optimizer(ps, config))
        self.weight_opt = CombinedOptimizer([self.dmp.fused_optimizer, self.dense_opt])
        self.optimizer = (
            CombinedOptimizer([("weights", self.weight_opt), *self.extra.items()])
            if self.extra
            else self.weight_opt
        )
        self._base_lrs = [g["lr"] for g in self.weight_opt.param_groups]
        self.total_steps = 0
        self._writer: Any = None

    def log_scalars(self, prefix: str, scalars: dict[str, Any], step: int) -> None:
        """TensorBoard scalars ``prefix/key`` at ``step`` (main rank; RUN_DIR/tensorboard)."""
        if not self.env.is_main:
            return
        if self._writer is None:
            self._writer = _summary_writer(self.run_dir)
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(f"{prefix}/{k}", float(v), step)

    def close(self) -> None:
        """Flush the TensorBoard scalars."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- one step ---------------------------------------------------------------------------
    def warmup_steps(self) -> int:
        """The configured warm-up, capped at ``warmup_max_fraction`` of the run's steps: a
        70-step day must not spend all of it (or more) warming up."""
        cfg = self.config
        if not self.total_steps or not cfg.warmup_steps:
            return cfg.warmup_steps
        return min(cfg.warmup_steps, max(1, int(cfg.warmup_max_fraction * self.total_steps)))

    def lr_scale(self, step: int) -> float:
        """Linear warm-up, then constant or cosine decay to 0 at the last step."""
        warmup = self.warmup_steps()
        if step < warmup:
            return (step + 1) / warmup
        if self.config.lr_decay == "cosine" and self.total_steps > warmup:
            progress = (step - warmup) / max(self.total_steps - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    def zero_grad(self) -> None:
        """Zero every optimizer's gradients; also hands the current learning rate to the fused
        embedding kernels, which capture it in forward: call it before the forward pass."""
        self.optimizer.zero_grad()

    def train_step(self, step: int, batches: list[Batch]) -> dict[str, Any]:
        self.hooks.before_step(self, step)
        scale = self.lr_scale(step)
        for group, lr in zip(self.weight_opt.param_groups, self._base_lrs, strict=True):
            group["lr"] = lr * scale
        self.zero_grad()
        loss = self.hooks.loss(self, batches[0].to(self.env.device))
        loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(list(self.dense_opt.params.values()), self.config.grad_clip)
        self.weight_opt.step()
        extra = self.hooks.after_step(self, step, [b.to(self.env.device) for b in batches[1:]])
        fault_point("train-step")
        return {"loss": loss, **extra}

    # -- checkpoints ------------------------------------------------------------------------
    def _save(self, step: int, loop_state: dict[str, Any], name: str = "checkpoint") -> None:
        meta = {**self.meta, "loop": loop_state, "hooks": self.hooks.state_dict()}
        optimizer = self.optimizer if name != BEST else None
        save_checkpoint(self.run_dir, step, self.dmp, optimizer, meta, self.env, name=name)
        fault_point(f"{name}-saved")

    def _previous_meta(self) -> dict[str, Any] | None:
        """The checkpoint meta of an earlier run in ``run_dir``, if it is this same run."""
        previous = checkpoint_meta(self.run_dir)
        if previous is None:
            return None
        old = {k: v for k, v in previous.items() if k not in ("step", "loop", "hooks")}
        shown = differing_keys(old, self.meta)
        if shown:
            raise ValueError(
                f"{self.run_dir} holds a checkpoint of another run (differs in: {shown}); "
                "use a new output directory, or --restart to start over"
            )
        return previous

    def _resume(self) -> tuple[int, dict[str, Any]]:
        previous = self.previous
        if previous is None:
            return 0, {}
        self.dense_opt.init_state()  # Adam's state is created lazily; it must exist to be restored
        for opt in self.extra.values():
            if hasattr(opt, "init_state"):
                opt.init_state()
        step = load_checkpoint(self.run_dir, self.dmp, self.optimizer)
        self.hooks.load_state_dict(previous.get("hooks", {}))
        return step, previous.get("loop", {})

    # -- the run ----------------------------------------------------------------------------
    def run(
        self,
        batches: Callable[[int], Any],
        val_batches: Callable[[], Iterable[Batch]] | None = None,
    ) -> LoopResult:
        """Train over ``batches(epoch)`` (a sized iterable of batches) for the configured
        epochs and step budget. With ``val_batches`` and epochs > 1, every finished epoch is
        validated; training stops after ``patience`` epochs without a lower validation
        logloss and the model keeps the best epoch's weights."""
        cfg, env = self.config, self.env
        per_step = self.hooks.batches_per_step
        per_epoch = len(batches(0)) // per_step
        if per_epoch == 0:
            raise ValueError(
                f"the train days hold fewer than {per_step} batch(es) of {cfg.batch_size} rows per "
                f"rank (world size {env.world_size}); lower batch_size"
            )
        total = per_epoch * cfg.epochs
        self.total_steps = total = min(total, cfg.max_steps) if cfg.max_steps else total
        validate = val_batches is not None and cfg.epochs > 1
        if env.is_main:
            g_pathmgr.mkdirs(self.run_dir)
        start, loaded = self._resume()
        state: dict[str, Any] = {"epochs": [], "best": None, "best_epoch": None, "bad": 0}
        state.update({"finished": False, "stopped_early": False, **loaded})
        if state["finished"]:
            return self._result(total, start, None, state)
        if env.is_main and start:
            print(f"resuming from the checkpoint at step {start} of {total}")
        if env.is_main and self.warmup_steps() < cfg.warmup_steps and not start:
            print(
                f"note: warm-up shortened from {cfg.warmup_steps} to {self.warmup_steps()} steps "
                f"({cfg.warmup_max_fraction:g} of this run's {total} steps)",
                file=sys.stderr,
            )
        bar = tqdm(
            total=total,
            initial=start,
            desc=self.desc,
            unit="step",
            disable=not (self.progress and env.is_main),
            dynamic_ncols=True,
        )
        samples, began = 0, time.perf_counter()
        self.dmp.train()
        stop = StopRequests(env)
        try:
            for epoch in range(start // per_epoch, cfg.epochs):
                first, last = epoch * per_epoch, min((epoch + 1) * per_epoch, total)
                if first >= total:
                    break
                stream = iter(batches(epoch))
                for step in range(first, last):
                    group = [next(stream) for _ in range(per_step)]
                    if step < start:
                        continue
                    scalars = self.train_step(step, group)
                    samples += sum(len(b.labels) for b in group) * env.world_size
                    bar.update(1)
                    if step % cfg.log_every == 0 or step + 1 == total:
                        shown = {k: float(torch.as_tensor(v).detach()) for k, v in scalars.items()}
                        bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()})
                        self.log_scalars("train", shown, step)
                    if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < total:
                        self._save(step + 1, state)
                    if stop.requested() and step + 1 < total:
                        self._save(step + 1, state)  # Ctrl-C or the scheduler's SIGTERM: keep the work
                        bar.write(
                            f"stopped by {stop.signal_name}: checkpoint at step {step + 1} of {total} saved"
                        )
                        raise KeyboardInterrupt
                if validate and (last == total or last == (epoch + 1) * per_epoch):
                    assert val_batches is not None
                    self._validate(epoch, last, val_batches, state, bar)
                    if last < total:
                        self._save(last, state)
                if state["stopped_early"]:
                    break
        finally:
            stop.close()
            bar.close()
        elapsed = time.perf_counter() - began
        if state["best_epoch"] is not None and state["best_epoch"] != state["epochs"][-1]["epoch"]:
            load_checkpoint(self.run_dir, self.dmp, None, name=BEST)  # keep the best epoch
        state["finished"] = True
        self._save(total, state)
        self.close()
        return self._result(total, start, samples / elapsed if samples else None, state)

    def _validate(
        self,
        epoch: int,
        step: int,
        val_batches: Callable[[], Iterable[Batch]],
        state: dict[str, Any],
        bar: Any,
    ) -> None:
        """Validate after ``epoch``; keep its weights if best; decide on early stopping."""
        metrics = evaluate(self.dmp, val_batches(), self.env, "the validation day")
        state["epochs"].append({"epoch": epoch, "step": step, **metrics})
        self.log_scalars("val", {k: metrics[k] for k in ("auc", "logloss", "ne")}, step)
        best = state["best"] is None or metrics["logloss"] < state["best"]
        if best:
            state.update(best=metrics["logloss"], best_epoch=epoch, bad=0)
            self._save(step, state, name=BEST)
        else:
            state["bad"] += 1
        bar.write(
            f"epoch {epoch + 1}: val logloss {metrics['logloss']:.5f}, auc {metrics['auc']:.5f}"
            + (" (best)" if best else f" (best: epoch {state['best_epoch'] + 1})")
        )
        if state["bad"] >= self.config.patience and step < self.total_steps:
            state["stopped_early"] = True
            bar.write(f"early stop: no lower val logloss for {self.config.patience} epoch(s)")

    @staticmethod
    def _result(total: int, start: int, speed: float | None, state: dict[str, Any]) -> LoopResult:
        return LoopResult(
            steps=total,
            start_step=start,
            samples_per_s=speed,
            epochs=state["epochs"],
            best_epoch=state["best_epoch"],
            stopped_early=bool(state["stopped_early"]),
        )
