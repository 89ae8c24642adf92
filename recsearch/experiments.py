"""Reproducible experiments: the runs behind docs/results.md and docs/benchmarks.md.

The ``tools/`` scripts are thin front ends over these functions. An experiment always
measures fresh: it works in a new directory ``BASE/<name>-<UTC time>`` (it refuses to
reuse one), runs every stage through the documented CLI (so what it measures is what a
user runs), logs each command with its wall time in ``commands.log``, and each table
it prints names that directory, so every figure says which run it came from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsearch.train.metrics import binary_entropy

ZOO = ["lr", "fm", "wide_deep", "deepfm", "dlrm", "dcn_v2", "xdeepfm", "autoint"]


class ExperimentError(RuntimeError):
    """A stage of an experiment failed; the message holds the command and its stderr tail."""


def machine() -> str:
    """What the numbers depend on beyond the code: runs repeat bit for bit on one machine but
    not across CPUs (their kernels round differently), so every run log names its machine."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} (CPU kernels: {capability})"


class Experiment:
    """A fresh working directory and the CLI commands run in it.

    Args:
        base: folder that holds experiment runs.
        name: the experiment's name (the run directory is ``base/name-<UTC time>``).
    """

    def __init__(self, base: str | Path, name: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.dir = Path(base) / f"{name}-{stamp}"
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ExperimentError(f"{self.dir} exists: an experiment never reuses an earlier run") from None
        self.log = self.dir / "commands.log"
        self.log.write_text(f"# {machine()}\n")
        self.seconds: dict[str, float] = {}

    def recsearch(self, *args: str, label: str = "") -> float:
        """Run ``recsearch ARGS``; returns its wall time (also logged)."""
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "recsearch", *args], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        with self.log.open("a") as f:
            f.write(f"{seconds:9.1f} s  recsearch {' '.join(args)}  (exit {r.returncode})\n")
        if r.returncode:
            raise ExperimentError(f"recsearch {' '.join(args)} failed:\n{r.stderr[-3000:]}")
        if label:
            self.seconds[label] = seconds
        return seconds

    def synth_shards(
        self, days: list[int], rows_per_day: int, seed: int, preset: str = "small", vocab_days: str = ""
    ) -> str:
        """Planted raw days (``DIR/raw``) preprocessed into ``DIR/shards``."""
        from recsearch.data.criteo import format_days

        d = format_days(days)
        self.recsearch("synth", "--out", f"{self.dir}/raw", "--days", d, "--rows-per-day", str(rows_per_day),
                       "--preset", preset, "--seed", str(seed))  # fmt: skip
        vocab = ["--vocab-days", vocab_days] if vocab_days else []
        self.recsearch("preprocess", "--input", f"{self.dir}/raw", "--out", f"{self.dir}/shards", *vocab)
        return f"{self.dir}/shards"

    def movielens_shards(self, folder: str) -> str:
        """Real MovieLens-100K (``folder`` from tools/fetch_movielens.sh) converted with the
        project's schema (five chronological days) into ``DIR/ml``."""
        schema = str(Path(__file__).resolve().parents[1] / "configs" / "datasets" / "movielens100k.yaml")
        self.recsearch("convert", "--schema", schema, "--data-root", folder, "--out", f"{self.dir}/ml")
        return f"{self.dir}/ml"

    def bayes(self, day: int) -> dict[str, float]:
        """The teacher's own logloss, AUC and NE on a planted day: the limit no model beats."""
        truth = json.loads((self.dir / "raw" / "truth" / "bayes.json").read_text())
        d = next(x for x in truth["days"] if x["day"] == day)
        ne = d["bayes_logloss"] / binary_entropy(d["ctr"])
        return {"logloss": d["bayes_logloss"], "auc": d["bayes_auc"], "ne": ne, "ctr": d["ctr"]}

    def train(
        self, model: list[str], shards: str, days: str, eval_day: int, name: str, *extra: str
    ) -> dict[str, Any]:
        """``recsearch train`` of ``model`` (``["--model", X]`` or ``["--arch", F]``) into
        ``DIR/runs/NAME``; its metrics.json, with the command's wall time."""
        run = f"{self.dir}/runs/{name}"
        where = ["--data", shards, "--train-days", days, "--eval-day", str(eval_day), "--out", run]
        seconds = self.recsearch("train", *model, *where, *extra)
        return {**json.loads(Path(f"{run}/metrics.json").read_text()), "command_seconds": seconds}

    def search(
        self, method: str, shards: str, train_days: str, val_day: int, name: str, *extra: str
    ) -> dict[str, Any]:
        """``recsearch search METHOD`` into ``DIR/NAME``; its search.json, with the wall time."""
        out = f"{self.dir}/{name}"
        where = ["--data", shards, "--train-days", train_days, "--val-day", str(val_day), "--out", out]
        seconds = self.recsearch("search", method, *where, *extra)
        return {**json.loads(Path(f"{out}/search.json").read_text()), "command_seconds": seconds, "dir": out}

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        return path


def metrics_table(
    results: dict[str, dict[str, Any]], bayes: dict[str, float] | None = None, base: str = "dlrm"
) -> list[str]:
    """The paper's Table I layout (markdown): FLOPs, params, NE, relative NE, AUC, logloss."""
    ref = results[base]["ne"] if base in results else None
    lines = [
        "| model | MFLOPs/example | params | dense params | NE | rel. NE | AUC | logloss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        rel = f"{r['ne'] / ref:.4f}" if ref else ""
        lines.append(
            f"| {name} | {r['flops'] / 1e6:.3f} | {r['params']:,} | {r['dense_params']:,} | {r['ne']:.4f} | "
            f"{rel} | {r['auc']:.4f} | {r['logloss']:.4f} |"
        )
    if bayes:
        rel = f"{bayes['ne'] / ref:.4f}" if ref else ""
        lines.append(
            f"| *Bayes limit* | | | | {bayes['ne']:.4f} | {rel} | {bayes['auc']:.4f} | "
            f"{bayes['logloss']:.4f} |"
        )
    return lines


def zoo_results(
    base: str,
    rows_per_day: int = 100_000,
    days: int = 4,
    movielens: str = "",
    models: list[str] | None = None,
) -> str:
    """Every zoo model on planted data (days 0..N-2 train, N-1 eval) and, with ``movielens``,
    on real MovieLens-100K (days 0-3 train, day 4 eval); returns the markdown."""
    exp = Experiment(base, "zoo")
    models = models or ZOO
    overrides = ["batch_size=512", "warmup_steps=100", "eval_batch_size=8192"]
    shards = exp.synth_shards(list(range(days)), rows_per_day, seed=0)
    train_days, eval_day = f"0-{days - 2}", days - 1
    planted = {
        m: exp.train(["--model", m], shards, train_days, eval_day, f"synth_{m}", *overrides) for m in models
    }
    text = [
        "# Results: baseline zoo",
        "",
        f"Run `{exp.dir}`: `recsearch train` of each model (one process, DMP; {' '.join(overrides)}).",
        "FLOPs are forward FLOPs per example from `torch.utils.flop_counter` (embedding lookups count 0).",
        "",
        f"## Planted data: `synth --preset small --seed 0`, {days} days x {rows_per_day:,} rows",
        "",
        f"Train days {train_days}, eval day {eval_day}. The last row is the teacher's own probabilities "
        "on the eval day: the limit no model can beat.",
        "",
        *metrics_table(planted, exp.bayes(eval_day)),
        "",
    ]
    if movielens:
        ml = exp.movielens_shards(movielens)
        real = {m: exp.train(["--model", m], ml, "0-3", 4, f"ml_{m}", *overrides) for m in models}
        text += [
            "## MovieLens-100K (real; rating > 3 is a click)",
            "",
            "Ratings cut chronologically into 5 equal days; train days 0-3, eval day 4.",
            "",
            *metrics_table(real),
            "",
        ]
    return "\n".join(text)


# ---------------------------------------------------------------- embedding-size comparisons
UES_DIMS = (8, 16, 32, 64)


def uniform_sizes(
    exp: Experiment,
    base_model: str,
    hidden: list[int],
    shards: str,
    days: str,
    eval_day: int,
    seed: int,
    dims: tuple[int, ...] = UES_DIMS,
    width: int | None = None,
) -> dict[str, Any]:
    """UES-d: ``base_model`` with every table at d, trained on ``days`` with the train preset
    small, scored on ``eval_day``: what an embedding-size search must beat. ``width``: the
    tables are projected to that interaction width ("UES-d@W"), the control for a searched
    model that interacts wider than its tables."""
    from recsearch.models.arch import save_arch
    from recsearch.search.common import base_model_arch

    out = {}
    for d in dims:
        name = f"ues{d}" + (f"_at{width}" if width else "")
        arch = {**base_model_arch(base_model, width or d, hidden), "name": f"{base_model}_{name}"}
        if width:
            arch["embedding"] = {"dim": width, "dims": {f: d for f in _features(shards)}}
        save_arch(str(exp.dir / f"{name}.json"), arch)
        label = f"UES-{d}" + (f"@{width}" if width else "")
        out[label] = exp.train(
            ["--arch", str(exp.dir / f"{name}.json")], shards, days, eval_day, name, "--preset", "small",
            f"seed={seed}",
        )  # fmt: skip
    return out


def _features(shards: str) -> list[str]:
    from recsearch.data.shards import ShardInfo

    info = ShardInfo.load(shards)
    return info.sparse_names + info.jagged_names


def scored_on(exp: Experiment, run: str, shards: str, day: int) -> dict[str, Any]:
    """A finished training run (e.g. a search's retrain) scored on ``day``: its metrics.json
    (sizes, FLOPs) with that day's AUC, logloss and NE."""
    result = f"{run}/eval_day_{day}.json"
    exp.recsearch("eval", "--run", run, "--data", shards, "--day", str(day), "--out", result)
    return {**json.loads(Path(f"{run}/metrics.json").read_text()), **json.loads(Path(result).read_text())}


def size_table(models: dict[str, dict[str, Any]], reference: str = "UES-16") -> list[str]:
    """Embedding parameters and quality of each model against ``reference`` (markdown)."""
    ref = models[reference]
    lines = [
        f"| model | embedding params | vs {reference} | table MiB | dense params | AUC | ΔAUC | "
        "logloss | NE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in models.items():
        lines.append(
            f"| {name} | {m['embedding_params']:,} | "
            f"{m['embedding_params'] / ref['embedding_params'] - 1:+.1%} | "
            f"{m['embedding_bytes'] / 2**20:.1f} | {m['dense_params']:,} | {m['auc']:.4f} | "
            f"{m['auc'] - ref['auc']:+.4f} | {m['logloss']:.4f} | {m['ne']:.4f} |"
        )
    return lines


def size_target(models: dict[str, dict[str, Any]], method: str, reference: str = "UES-16") -> str:
    """The embedding-size target: a ``method`` model with >= 30% fewer embedding parameters
    than ``reference`` at no more than 0.001 AUC loss."""
    ref = models[reference]
    what = f">= 30% fewer embedding parameters than {reference}"
    ok = [
        n
        for n, m in models.items()
        if n.startswith(method)
        and m["embedding_params"] <= 0.7 * ref["embedding_params"]
        and m["auc"] >= ref["auc"] - 0.001
    ]
    if ok:
        return f"Target met by {', '.join(ok)}: {what}, AUC within 0.001."
    return f"Target NOT met: no {method} model has {what} at <= 0.001 AUC loss."


def planted_fields(raw: str | Path, dim: dict[str, float], what: str = "dim") -> list[str]:
    """A per-field ``dim`` beside what ``synth`` planted in ``raw``: informative fields (a
    first-order effect, some in crosses) vs pure-noise ones (markdown)."""
    t = json.loads((Path(raw) / "truth" / "teacher.json").read_text())
    crossed = {f for c in t["pairs"] + t["triples"] for f in c}
    rows: list[str] = []
    inf: list[float] = []
    noise: list[float] = []
    for i, scale in enumerate(t["cat_scale"]):
        d = dim[f"cat_{i}"]
        (inf if scale > 0 else noise).append(d)
        kind = "crossed" if i in crossed else ("first-order" if scale > 0 else "noise")
        rows.append(f"| cat_{i} | {t['cardinality'][i]:,} | {kind} | {scale:.2f} | {d:.1f} |")
    mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
    return [
        f"Mean of the {what} column: the {len(inf)} informative fields {mean(inf):.1f}, the {len(noise)} "
        f"pure-noise fields {mean(noise):.1f} (smallest informative {min(inf):.1f}, largest noise "
        f"{max(noise):.1f}).",
        "",
        f"| field | cardinality | planted | first-order scale | {what} |",
        "|---|---:|---|---:|---:|",
        *rows,
    ]


def results_arguments(doc: str) -> Any:
    """The options every ``tools/<method>_results.py`` shares: planted data (days, rows, seed,
    presets), the work folder and MovieLens."""
    import argparse

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--rows-per-day", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="small", help="search preset")
    p.add_argument("--synth-preset", default="small")
    p.add_argument("--work", default="runs/experiments")
    p.add_argument("--movielens", default="", help="folder of tools/fetch_movielens.sh: also run on it")
    p.add_argument("--skip-planted", action="store_true", help="only MovieLens")
    return p


def size_search_main(doc: str, results: Callable[..., str], movielens: Callable[..., str]) -> None:
    """The command line of an embedding-size search's results tool (``tools/<method>_results.py``):
    planted data and/or MovieLens, printed as markdown for docs/results.md."""
    p = results_arguments(doc)
    p.add_argument("overrides", nargs="*", help="search overrides")
    a = p.parse_args()
    if a.movielens:
        print(movielens(a.work, a.movielens, a.seed, a.preset, a.overrides))
    if not a.skip_planted:
        print(results(a.work, a.days, a.rows_per_day, a.seed, a.preset, a.synth_preset, a.overrides))
