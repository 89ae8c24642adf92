"""One DistDNAS search job: bilevel first-order search of the supernet over some days.

Within the job's days (in order, rows shuffled within a day), each step of the shared
training loop draws two batches: a weight step on the first (tables by fused Adagrad
in backward, the rest by Adam, linear warm-up), then an architecture step on the
second, unseen batch of the same day: Adam on (alpha, beta) minimizing its logloss
plus the cost regularizer. Embeddings are looked up without autograd in the
architecture step, so the fused table optimizer does not fire on held-out batches.
At the end the supernet is scored deterministically (noise-free weights) on the
validation day. Writes ``OUT/weights.json`` (atomically, last: its presence means the
job is done); the loop checkpoints to ``OUT/checkpoint/`` so a killed job resumes.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from iopath.common.file_io import g_pathmgr
from torchrec.datasets.utils import Batch
from torchrec.optim.keyed import KeyedOptimizer, KeyedOptimizerWrapper

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo
from recsearch.dist.env import DistEnv, init_distributed
from recsearch.search.distdnas.config import DistDNASConfig
from recsearch.search.distdnas.cost import cost_weights
from recsearch.search.distdnas.space import DENSE_OPS, SPARSE_OPS
from recsearch.search.distdnas.supernet import Supernet
from recsearch.train.loop import LoopHooks, TrainLoop, evaluate
from recsearch.train.metrics import CTRMetrics
from recsearch.utils.fileio import read_json, write_json

WEIGHTS = "weights.json"
PLAN = "plan.json"


def job_done(out: str) -> bool:
    return g_pathmgr.exists(f"{out}/{WEIGHTS}")


class BilevelHooks(LoopHooks):
    """The architecture step after each weight step, on the step's second batch."""

    batches_per_step = 2

    def __init__(self, config: DistDNASConfig, cost_table: dict[str, Any] | None) -> None:
        self.config = config
        self.gamma = config.cost_gamma if cost_table is not None else 0.0
        s_dense, s_sparse = cost_weights(cost_table) if cost_table is not None else ([0.0] * 5, [0.0] * 5)
        self.cost_dense, self.cost_sparse = torch.tensor(s_dense), torch.tensor(s_sparse)
        self.heldout = CTRMetrics()
        self.history: list[dict[str, Any]] = []

    def optimizers(self, model: torch.nn.Module) -> dict[str, KeyedOptimizer]:
        params = model.arch_parameters()  # type: ignore[operator]
        lr = self.config.arch_lr
        self.arch_opt = KeyedOptimizerWrapper(
            params, lambda p: torch.optim.Adam(p, lr=lr, betas=(0.5, 0.999))
        )
        return {"arch": self.arch_opt}

    def before_step(self, loop: TrainLoop, step: int) -> None:
        torch.manual_seed(self.config.seed * 1_000_003 + step)  # Gumbel noise: same after a resume

    def after_step(self, loop: TrainLoop, step: int, extra: list[Batch]) -> dict[str, Any]:
        b = extra[0]
        loop.zero_grad()
        logits = loop.dmp(b.dense_features, b.sparse_features, embedding_grad=False)
        arch_loss = F.binary_cross_entropy_with_logits(logits, b.labels.float())
        supernet: Supernet = loop.module  # type: ignore[assignment]
        if self.gamma:
            w_dense, w_sparse = supernet.mixing_weights(sample=False)
            cost = (w_dense * self.cost_dense).sum() + (w_sparse * self.cost_sparse).sum()
            arch_loss = arch_loss + self.gamma * cost
        arch_loss.backward()
        self.arch_opt.step()
        if step >= loop.total_steps // 2:  # held-out quality of the supernet: the job's second half
            self.heldout.update(logits.detach(), b.labels)
        if step % self.config.log_every == 0 or step + 1 == loop.total_steps:
            state = supernet.arch_state()
            self.history.append(
                {
                    "step": step + 1,
                    "dense_weights": state["dense_weights"],
                    "sparse_weights": state["sparse_weights"],
                }
            )
        return {"arch_loss": arch_loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))


def run_job(
    data: str,
    days: list[int],
    out: str,
    config: DistDNASConfig,
    cost_table: dict[str, Any] | None,
    val_day: int | None = None,
    env: DistEnv | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Search over ``days``; returns (and writes to ``out/weights.json``) the learned weights."""
    env = env or init_distributed()
    info = ShardInfo.load(data)
    info.check_days([*days, *([] if val_day is None else [val_day])])
    torch.manual_seed(config.seed)
    model = Supernet(
        space=config.space,
        feature_names=info.sparse_names + info.jagged_names,
        num_embeddings=info.num_embeddings,
        num_dense=len(info.dense_names),
        temperature=config.temperature,
    )
    hooks = BilevelHooks(config, cost_table)
    meta = {"kind": "distdnas-search-job", "days": days, "config": config.to_dict(), "cost_table": cost_table}
    loop = TrainLoop(
        model=model,
        config=config,
        env=env,
        run_dir=out,
        meta=meta,
        hooks=hooks,
        desc=f"search days {','.join(map(str, days))}",
        progress=progress,
    )

    def batches(epoch: int) -> ShardBatches:
        return ShardBatches(
            data, days, config.batch_size, env.rank, env.world_size, seed=config.seed, epoch=epoch
        )

    started = time.perf_counter()
    ran = loop.run(batches)
    elapsed = time.perf_counter() - started
    val = None
    if val_day is not None:
        val_batches = ShardBatches(
            data, [val_day], config.eval_batch_size, env.rank, env.world_size, shuffle=False
        )
        val = {"day": val_day, **evaluate(loop.dmp, val_batches, env, f"validation day {val_day}")}
    supernet: Supernet = loop.module  # type: ignore[assignment]
    result: dict[str, Any] = {
        "days": days,
        "dense_ops": DENSE_OPS,
        "sparse_ops": SPARSE_OPS,
        **supernet.arch_state(),
        "temperature": config.temperature,
        "steps": ran.steps,
        "cost_gamma": hooks.gamma,
        # the architecture batches of the second half (after a resume: of this process's part)
        "heldout": hooks.heldout.compute() if max(ran.start_step, ran.steps // 2) < ran.steps else None,
        # the supernet with noise-free mixing weights on the validation day
        "val": val,
        "seconds": elapsed,
        "threads": torch.get_num_threads(),
        "samples_per_s": ran.samples_per_s,
        "history": hooks.history,
    }
    if env.is_main:
        write_json(f"{out}/{WEIGHTS}", result)
    return result


def run_named_job(config: DistDNASConfig, data: Any, search_dir: str, name: str, progress: bool) -> None:
    """The job ``name`` of the plan in ``search_dir/plan.json`` (the shared job runner calls this)."""
    plan = read_json(f"{search_dir}/{PLAN}")
    jobs = {j["name"]: j["days"] for j in plan["jobs"]}
    if name not in jobs:
        raise ValueError(f"{search_dir} plans no job {name!r}; its jobs: {', '.join(jobs)}")
    out = f"{search_dir}/{name}"
    if job_done(out):
        print(f"{out}: already done ({WEIGHTS} present), skipped", file=sys.stderr)
        return
    cost = read_json(plan["cost_table"]) if plan.get("cost_table") else None
    run_job(data.root, jobs[name], out, config, cost, val_day=data.val_day, progress=progress)
