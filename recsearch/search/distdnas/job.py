"""One DistDNAS search job: bilevel first-order search of the supernet over some days.

Within the job's days (in order, rows shuffled within a day), each step of the shared
training loop draws two batches: a weight step on the first (tables by fused Adagrad
in backward, the rest by Adam, linear warm-up), then an architecture step on the
second, unseen batch of the same day: Adam on (alpha, beta) minimizing its logloss
plus the cost regularizer (after the first ``arch_warmup`` of the steps; the Gumbel
temperature annealed to ``temperature_end`` if set). Embeddings are looked up without
autograd in the architecture step, so the fused table optimizer does not fire on
held-out batches. The job's second-half architecture batches and, at the end, the
validation day score the supernet deterministically (noise-free weights
softmax(alpha / lambda)). Writes ``OUT/weights.json`` (atomically, last: its presence
means the job is done); the loop checkpoints to ``OUT/checkpoint/`` so a killed job resumes.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

import numpy as np
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


def job_seed(seed: int, days: list[int]) -> int:
    """The seed of the job over ``days`` in a run seeded ``seed`` (``day_seeds``): distinct per
    job, so the days' initializations, shuffles and Gumbel noise differ and averaging cancels them."""
    return int(np.random.SeedSequence([seed, *days]).generate_state(1)[0] % 2**31)


def temperature_at(config: DistDNASConfig, step: int, total_steps: int) -> float:
    """lambda at ``step``: constant, or annealed geometrically to ``temperature_end`` at the end."""
    if not config.temperature_end:
        return config.temperature
    progress = min(step, total_steps - 1) / (total_steps - 1) if total_steps > 1 else 1.0
    return float(config.temperature * (config.temperature_end / config.temperature) ** progress)


def job_done(out: str) -> bool:
    return g_pathmgr.exists(f"{out}/{WEIGHTS}")


class BilevelHooks(LoopHooks):
    """The architecture step after each weight step, on the step's second batch."""

    batches_per_step = 2

    def __init__(self, config: DistDNASConfig, cost_table: dict[str, Any] | None) -> None:
        self.config = config
        self.gamma = config.cost_gamma if cost_table is not None else 0.0
        n = config.space.num_blocks
        s_dense, s_sparse = cost_weights(cost_table, n) if cost_table is not None else ([[0.0] * 5] * n,) * 2
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
        supernet: Supernet = loop.module  # type: ignore[assignment]
        supernet.temperature = temperature_at(self.config, step, loop.total_steps)

    def after_step(self, loop: TrainLoop, step: int, extra: list[Batch]) -> dict[str, Any]:
        b = extra[0]
        supernet: Supernet = loop.module  # type: ignore[assignment]
        logs: dict[str, Any] = {}
        if step >= int(self.config.arch_warmup * loop.total_steps):  # else warm-up: alpha, beta wait
            loop.zero_grad()
            logits = loop.dmp(b.dense_features, b.sparse_features, embedding_grad=False)
            arch_loss = F.binary_cross_entropy_with_logits(logits, b.labels.float())
            if self.gamma:
                w_dense, w_sparse = supernet.mixing_weights(sample=False)
                cost = (w_dense * self.cost_dense).sum() + (w_sparse * self.cost_sparse).sum()
                arch_loss = arch_loss + self.gamma * cost
            arch_loss.backward()
            self.arch_opt.step()
            logs["arch_loss"] = arch_loss.detach()
        if step >= loop.total_steps // 2:  # held-out quality of the supernet: the job's second half,
            with torch.no_grad():  # with noise-free weights (Gumbel samples would confound it)
                clean = loop.dmp(b.dense_features, b.sparse_features, embedding_grad=False, sample=False)
            self.heldout.update(clean, b.labels)
        if step % self.config.log_every == 0 or step + 1 == loop.total_steps:
            state = supernet.arch_state()
            self.history.append(
                {
                    "step": step + 1,
                    "temperature": supernet.temperature,
                    "dense_weights": state["dense_weights"],
                    "sparse_weights": state["sparse_weights"],
                }
            )
        return logs

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
    if config.day_seeds:
        config = dataclasses.replace(config, seed=job_seed(config.seed, days))
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
    supernet: Supernet = loop.module  # type: ignore[assignment]
    supernet.temperature = temperature_at(config, loop.total_steps - 1, loop.total_steps)  # the final lambda
    val = None
    if val_day is not None:
        val_batches = ShardBatches(
            data, [val_day], config.eval_batch_size, env.rank, env.world_size, shuffle=False
        )
        val = {"day": val_day, **evaluate(loop.dmp, val_batches, env, f"validation day {val_day}")}
    result: dict[str, Any] = {
        "days": days,
        "dense_ops": DENSE_OPS,
        "sparse_ops": SPARSE_OPS,
        **supernet.arch_state(),
        "temperature": supernet.temperature,
        "seed": config.seed,
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
