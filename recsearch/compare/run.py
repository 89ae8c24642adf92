"""Run a comparison: every search and every baseline as a job of the shared torchx pool.

    OUT/request.json                 the config and data (a rerun must match it)
    OUT/raw, OUT/shards              planted data (when no --data is given)
    OUT/search/<method>/seed_<s>/    each search (``recsearch search <method>``)
    OUT/runs/<model>/seed_<s>/       each model trained with the one recipe
                                     (``recsearch train``; found models from their arch.json)
    OUT/random/<method>/seed_<s>/    with ``random_archs``: random architectures of the method's
                                     space at about its find's cost, trained as <method>.random_<i>
    OUT/logs/                        the jobs' logs
    OUT/report.md, OUT/compare.json, OUT/pareto_*.png   the report (``recsearch.compare.report``)

Searches and baselines go to the pool together; the found models' training follows. Every
job is the documented CLI command a user would type, so what is compared is what ships. A
job whose outputs exist is skipped: rerunning the same command resumes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from iopath.common.file_io import g_pathmgr

from recsearch.compare.config import CompareConfig
from recsearch.compare.latency import LATENCY
from recsearch.dist.jobs import JobPool, LaunchOptions, PoolJob, module_app
from recsearch.utils.fileio import check_out_dir, read_json, write_json

if TYPE_CHECKING:
    from recsearch.data.shards import ShardInfo

REQUEST = "request.json"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One model of the comparison at one seed: a search method's find, or a baseline."""

    model: str
    seed: int
    searched: bool
    arch: str = ""  # a random control's arch JSON

    @property
    def key(self) -> str:
        return f"{self.model}/seed_{self.seed}"


def compare(
    config: CompareConfig,
    out: str,
    data: str = "",
    launch: LaunchOptions | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the comparison into ``out``; returns the report's record."""
    from recsearch.compare.report import write_report
    from recsearch.data.criteo import format_days

    launch = launch or LaunchOptions()
    out = os.path.abspath(out)
    check_out_dir(out)
    _check_request(out, config, data, restart and not launch.dryrun, write=not launch.dryrun)
    days = config.day_list
    train_days, val_day, eval_day = format_days(days[:-2]), days[-2], days[-1]
    truth = None
    if data:
        from recsearch.data.shards import ShardInfo

        ShardInfo.load(data).check_days(days)
        shards = os.path.abspath(data)
    elif launch.dryrun:  # nothing is written: the jobs are shown over the shards to be made
        shards = f"{out}/shards"
    else:
        from recsearch.data.planted import planted_shards

        if launch.progress:
            print(f"planted data: days {config.days} x {config.rows_per_day:,} rows ({config.synth_preset})")
        truth = planted_shards(out, days, config.rows_per_day, config.synth_preset, config.seed)
        shards = f"{out}/shards"
    entries = [Entry(m, s, True) for s in config.seed_list for m in config.method_list]
    entries += [Entry(b, s, False) for s in config.seed_list for b in config.baselines]
    where = {"data": shards, "train_days": train_days, "val_day": val_day, "eval_day": eval_day}
    pool = JobPool(launch, f"{out}/logs")
    first = [_search_job(out, config, e, where, launch) for e in entries if e.searched]
    first += [_train_job(out, config, e, where, launch) for e in entries if not e.searched]
    ran = pool.run(first, "searches and baselines")
    found = [e for e in entries if e.searched and g_pathmgr.exists(f"{_search_dir(out, e)}/arch.json")]
    if launch.dryrun:
        if launch.progress:
            print("# then each found model's training (recsearch train --arch SEARCH/arch.json), as above")
        return {"dryrun": True}
    from recsearch.data.shards import ShardInfo

    info = ShardInfo.load(shards)
    randoms = _random_entries(out, config, found, info) if config.random_archs else []
    jobs = [_train_job(out, config, e, where, launch) for e in found + randoms]
    ran_found = pool.run(jobs, "found models" + (" and random controls" if randoms else ""))
    failed = {**ran.failed, **ran_found.failed}
    return write_report(out, config, entries, truth, eval_day, failed, launch.progress, info, randoms)


def search_dir(out: str, method: str, seed: int) -> str:
    return f"{out}/search/{method}/seed_{seed}"


def run_dir(out: str, model: str, seed: int) -> str:
    return f"{out}/runs/{model}/seed_{seed}"


def _search_dir(out: str, e: Entry) -> str:
    return search_dir(out, e.model, e.seed)


def _search_job(
    out: str, config: CompareConfig, e: Entry, where: dict[str, Any], launch: LaunchOptions
) -> PoolJob:
    """``recsearch search METHOD`` as one job; a method that fans out runs its own jobs one at
    a time inside it, locally, with the threads the pool gives this job."""
    d = _search_dir(out, e)

    def app(threads: int) -> Any:
        args = ["search", e.model, "--data", where["data"], "--train-days", where["train_days"],
                "--val-day", str(where["val_day"]), "--out", d, "--preset", config.search_preset,
                "--workers", "1", "--threads-per-job", str(threads), f"seed={e.seed}"]  # fmt: skip
        return module_app("recsearch", args, f"search-{e.model}-s{e.seed}", threads, launch)

    def done() -> bool:
        return g_pathmgr.exists(f"{d}/search.json") and g_pathmgr.exists(f"{d}/arch.json")

    return PoolJob(f"search-{e.model}-s{e.seed}", app, done, label=f"{e.model} search, seed {e.seed}")


def _random_entries(out: str, config: CompareConfig, found: list[Entry], info: ShardInfo) -> list[Entry]:
    """``random_archs`` random architectures of each found model's own space at about its cost
    (methods that register ``random_arch``), written once as arch JSONs and trained like it."""
    import zlib

    import numpy as np

    from recsearch.models.arch import load_arch, save_arch
    from recsearch.search.registry import get_method, resolve
    from recsearch.utils.config import load_config

    entries = []
    for e in found:
        m = get_method(e.model)
        if not m.random_arch:
            continue
        method_config: Any = load_config(
            m.config, None, [f"seed={e.seed}"], config.search_preset, m.preset_kind
        )
        found_arch = load_arch(f"{_search_dir(out, e)}/arch.json")
        for i in range(config.random_archs):
            path = f"{out}/random/{e.model}/seed_{e.seed}/random_{i}.json"
            if not g_pathmgr.exists(path):
                g_pathmgr.mkdirs(os.path.dirname(path))
                rng = np.random.default_rng([e.seed, zlib.crc32(e.model.encode()), i])
                save_arch(path, resolve(m.random_arch)(method_config, found_arch, info, rng))
            entries.append(Entry(f"{e.model}{RANDOM_TAG}{i}", e.seed, False, arch=path))
    return entries


RANDOM_TAG = ".random_"


def _train_job(
    out: str, config: CompareConfig, e: Entry, where: dict[str, Any], launch: LaunchOptions
) -> PoolJob:
    """``recsearch train`` of a baseline or of a search's arch.json, with the one recipe."""
    r = run_dir(out, e.model, e.seed)
    if e.arch:
        model = ["--arch", e.arch]
    else:
        model = ["--arch", f"{_search_dir(out, e)}/arch.json"] if e.searched else ["--model", e.model]

    def app(threads: int) -> Any:
        args = ["train", *model, "--data", where["data"], "--train-days", where["train_days"],
                "--eval-day", str(where["eval_day"]), "--out", r, "--preset", config.train_preset,
                f"seed={e.seed}"]  # fmt: skip
        return module_app("recsearch", args, f"train-{e.model}-s{e.seed}", threads, launch)

    def summary() -> str:
        m = read_json(f"{r}/metrics.json")
        return f"AUC {m['auc']:.4f}, logloss {m['logloss']:.4f}, {m['flops'] / 1e6:.3f} MFLOPs/example"

    def done() -> bool:
        return g_pathmgr.exists(f"{r}/metrics.json")

    return PoolJob(f"train-{e.model}-s{e.seed}", app, done, summary, label=f"{e.model}, seed {e.seed}")


def _check_request(out: str, config: CompareConfig, data: str, restart: bool, write: bool = True) -> None:
    """``out`` holds one comparison. A rerun may add or drop methods, baselines and seeds (each
    job has its own folder), but not change what a job computes (presets, days, data, first
    seed): that is refused, not mixed in; ``--restart`` deletes the earlier comparison."""
    import shutil

    from recsearch.utils.config import differing_keys

    path = f"{out}/{REQUEST}"
    fixed = {k: v for k, v in config.to_dict().items() if k not in _FREE_KEYS}
    request = {"config": fixed, "data": os.path.abspath(data) if data else ""}
    if restart:
        for name in _OUTPUTS:
            p = os.path.join(out, name)
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.remove(p)
    if g_pathmgr.exists(path):
        changed = differing_keys(read_json(path), request)
        if changed:
            raise ValueError(
                f"{out} holds a comparison with other settings ({changed}); use another --out, or "
                "--restart to delete it"
            )
    if write:
        g_pathmgr.mkdirs(out)
        write_json(path, request)


# keys that only choose which jobs run and how the report reads them
_FREE_KEYS = (
    "methods",
    "baselines",
    "seeds",
    "reference",
    "target_baseline",
    "flops_budget",
    "latency_model",
    "random_archs",
)
_OUTPUTS = ("search", "runs", "random", "logs", "raw", "shards", REQUEST, "report.md", "compare.json",
            "pareto_flops.png", "pareto_embedding.png", LATENCY)  # fmt: skip
