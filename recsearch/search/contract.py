"""The contract every search method runs under, and the three outputs it writes.

    recsearch search <method> --data SHARDS --train-days A-B --val-day V --out DIR
        [--preset NAME] [--config FILE.yaml] [key=value ...]

:func:`run_search` checks the request before any work (days exist, the validation
day is not a train day, ``DIR`` is usable, a rerun into ``DIR`` asks for the same
search), hands the method a :class:`SearchData` and a :class:`SearchOutput`, and
from the method's :class:`SearchResult` writes:

* ``DIR/arch.json``: the found architecture (schema-valid; ``recsearch train --arch``
  trains it and ``recsearch export`` ships it, with no method-specific code);
* ``DIR/search.json``: method, preset, the resolved config, seed, wall time per
  phase, FLOPs and parameter counts of the result, and the method's findings
  (keys documented in docs/search_methods.md);
* ``DIR/report.md``: the same for a person, with the method's PNG plots.

``DIR/request.json`` records what was asked; a rerun with the same request resumes
(each method resumes its own work), a different one is refused unless ``restart``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import format_days
from recsearch.data.shards import ShardInfo
from recsearch.dist.jobs import JobPool, LaunchOptions
from recsearch.search.registry import get_method
from recsearch.train.config import BaseConfig
from recsearch.utils.config import differing_keys
from recsearch.utils.fileio import check_out_dir, read_json, write_json

SEARCH_SCHEMA_VERSION = 1
REQUEST = "request.json"
PHASES = "phases.json"


@dataclass
class SearchData:
    """The shards a method searches on: train days for weights, one validation day for
    fitness / architecture decisions (never a train day)."""

    root: str
    train_days: list[int]
    val_day: int
    info: ShardInfo

    @property
    def feature_names(self) -> list[str]:
        return self.info.sparse_names + self.info.jagged_names

    @property
    def num_dense(self) -> int:
        return len(self.info.dense_names)

    def train_batches(
        self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> Callable[[int], Any]:
        """``epoch -> ShardBatches`` of the train days (this rank's share), as the loop takes them."""
        from recsearch.data.loader import ShardBatches

        def batches(epoch: int) -> ShardBatches:
            return ShardBatches(
                self.root, self.train_days, batch_size, rank, world_size, seed=seed, epoch=epoch
            )

        return batches


@dataclass
class SearchOutput:
    """Where a method writes, how it launches jobs, and its timed phases."""

    dir: str
    launch: LaunchOptions = field(default_factory=LaunchOptions)
    phases: dict[str, float] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase of the search: ``search.json`` ``phases``. Times add up over entries
        and over resumed runs (kept in ``DIR/phases.json``), so an interrupted search
        reports the time it really took."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start
            if not self.launch.dryrun:
                write_json(self.path(PHASES), self.phases)

    def resume_phases(self) -> None:
        path = self.path(PHASES)
        if g_pathmgr.exists(path):
            try:
                self.phases = {k: float(v) for k, v in read_json(path).items()}
            except (ValueError, AttributeError):
                self.phases = {}

    def pool(self) -> JobPool:
        return JobPool(self.launch, self.path("logs"))


@dataclass
class SearchResult:
    """What a method returns: the architecture, its findings, plots and report text.

    Attributes:
        arch: the found architecture spec (``recsearch.models.arch`` schema).
        findings: the method's own results under documented keys (JSON-able).
        plots: PNG files the method wrote, relative to the search directory.
        report: the method's section of ``report.md`` (markdown).
        dryrun: nothing ran (a dry run printed what would be submitted).
    """

    arch: dict[str, Any] | None = None
    findings: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    report: str = ""
    dryrun: bool = False


def check_request(data: str, train_days: list[int], val_day: int) -> ShardInfo:
    """The shard directory's info, after checking the days of a search."""
    if not train_days:
        raise ValueError("--train-days names no day")
    if val_day in train_days:
        raise ValueError(
            f"--val-day {val_day} is also a train day (--train-days {format_days(train_days)}): the "
            "validation day must be held out; pick another day"
        )
    info = ShardInfo.load(data)
    info.check_days([*train_days, val_day])
    if info.days[val_day] == 0:
        raise ValueError(f"--val-day {val_day} has no rows; pick another day")
    if not sum(info.days[d] for d in train_days):
        raise ValueError(f"--train-days {format_days(train_days)} hold no rows; pick other days")
    return info


def _same_request(out: str, request: dict[str, Any], restart: bool, defaults: dict[str, Any]) -> None:
    path = f"{out}/{REQUEST}"
    if not g_pathmgr.exists(path):
        return
    if restart:
        for name in g_pathmgr.ls(out):
            full = g_pathmgr.get_local_path(f"{out}/{name}")
            shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
        return
    try:
        old = read_json(path)
    except ValueError:
        raise ValueError(f"{path} is damaged; rerun with --restart to start the search over") from None
    old.pop("preset", None)  # a preset is a way of writing the config, which is compared
    shown = differing_keys(old, request, {"config": defaults})
    if shown:
        raise ValueError(
            f"{out} holds another search (differs in: {shown}); use a new --out, rerun with the "
            "same settings to resume, or add --restart to start over"
        )


def run_search(
    method: str,
    data: str,
    train_days: list[int],
    val_day: int,
    out: str,
    config: BaseConfig,
    preset: str | None = None,
    launch: LaunchOptions | None = None,
    restart: bool = False,
) -> dict[str, Any]:
    """Run a registered method under the contract; returns what ``search.json`` holds."""
    m = get_method(method)
    if not isinstance(config, m.config):
        raise TypeError(f"{method} takes a {m.config.__name__}, got {type(config).__name__}")
    info = check_request(data, train_days, val_day)
    check_out_dir(out)
    launch = launch or LaunchOptions()
    request = {
        "method": method,
        "config": config.to_dict(),
        "data": os.path.realpath(data) if "://" not in data else data,
        "train_days": list(train_days),
        "val_day": val_day,
    }
    _same_request(out, request, restart, config.defaults())
    done = f"{out}/search.json"
    if g_pathmgr.exists(done) and g_pathmgr.exists(f"{out}/arch.json") and not launch.dryrun:
        try:
            record: dict[str, Any] = read_json(done)
        except ValueError:
            record = {}
        if record.get("method") == method:
            if launch.progress:
                print(f"{out}: this search is already complete (--restart to redo it)")
            return record
    write_json(f"{out}/{REQUEST}", {**request, "preset": preset})
    # absolute: jobs may run in another directory (a Slurm job runs in its own job directory)
    output = SearchOutput(dir=out if "://" in out else os.path.abspath(out), launch=launch)
    output.resume_phases()
    started = time.perf_counter()
    result: SearchResult = m.run(config, SearchData(data, list(train_days), val_day, info), output)
    if result.dryrun:
        return {"method": method, "dryrun": True}
    if result.arch is None:
        raise RuntimeError(f"search method {method!r} returned no architecture")
    with output.phase("outputs"):
        record = write_outputs(m.name, m.summary, preset, request, config, result, output, info, val_day)
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    record["threads"] = _threads()  # part of the recipe: another count sums floats in another order
    record["phases"] = {k: round(v, 3) for k, v in output.phases.items()}
    write_json(done, record)
    return record


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def write_outputs(
    method: str,
    summary: str,
    preset: str | None,
    request: dict[str, Any],
    config: Any,
    result: SearchResult,
    output: SearchOutput,
    info: ShardInfo,
    val_day: int,
) -> dict[str, Any]:
    """``arch.json``, the counts of the found model, ``search.json`` and ``report.md``."""
    from recsearch.models.arch import save_arch
    from recsearch.models.builder import build_model
    from recsearch.profile.counts import model_counts

    assert result.arch is not None
    spec = dict(result.arch)
    spec.pop("tables", None)  # rebuilt from the data by whoever trains it
    save_arch(output.path("arch.json"), spec)
    model = build_model(
        spec,
        info.sparse_names + info.jagged_names,
        info.num_embeddings,
        len(info.dense_names),
        info.dense_names,
    )
    counts = model_counts(model, info.root, val_day)
    record: dict[str, Any] = {
        "schema_version": SEARCH_SCHEMA_VERSION,
        "method": method,
        "summary": summary,
        "preset": preset,
        "config": request["config"],
        "seed": getattr(config, "seed", None),
        "data": request["data"],
        "train_days": request["train_days"],
        "val_day": val_day,
        "phases": {k: round(v, 3) for k, v in output.phases.items()},
        "result": {"arch": "arch.json", "name": spec.get("name"), **counts},
        "findings": result.findings,
        "plots": result.plots,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_report(output.path("report.md"), record, result.report)
    return record


def _write_report(path: str, record: dict[str, Any], body: str) -> None:
    from recsearch.utils.fileio import atomic_open

    r = record["result"]
    lines = [
        f"# {record['method']} search",
        "",
        record["summary"],
        "",
        f"- data: `{record['data']}`, train days {format_days(record['train_days'])}, "
        f"validation day {record['val_day']}",
        f"- preset: {record['preset'] or '(none: the defaults)'}, seed {record['seed']}",
        f"- found model `{r['name']}` (`arch.json`): {r['flops'] / 1e6:.3f} MFLOPs/example, "
        f"{r['params']:,} parameters ({r['dense_params']:,} dense, {r['embedding_params']:,} embedding, "
        f"{r['embedding_bytes'] / 2**20:.1f} MiB of tables)",
        "",
        "| phase | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in record["phases"].items()],
        "",
        body.strip(),
        "",
        *[f"![{p}]({p})\n" for p in record["plots"]],
        "Train it: `recsearch train --arch arch.json --data SHARDS --train-days A-B --eval-day E --out RUN`",
        "",
    ]
    with atomic_open(path, "w") as f:
        f.write("\n".join(lines))
