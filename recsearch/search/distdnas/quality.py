"""DistDNAS quality checks: can the space beat DCN-v2, does the search find it, and at what cost.

Each function runs a fresh :class:`recsearch.experiments.Experiment` through the CLI on
planted data (``synth --preset PRESET``; the quickstart's ``tiny`` by default) and returns
markdown for docs/results.md; ``tools/distdnas_quality.py`` is the front end. Days
0..N-3 are searched and trained on, day N-2 is the search's validation day, day N-1 is
held out. Search settings: the ``small`` search preset plus each check's overrides; every
model (found, random, in-space, zoo) is trained with the ``small`` train preset.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from recsearch.data.criteo import format_days
from recsearch.experiments import Experiment, metrics_table
from recsearch.utils.fileio import read_json

# the search and train presets of every check (tests run the checks with "tiny")
PRESETS = {"search": "small", "train": "small"}
BASELINES = ("dlrm", "dcn_v2", "deepfm")


def _days(n: int) -> tuple[list[int], int, int]:
    if n < 3:
        raise ValueError(f"a check needs at least 3 days (train, validation, held out), got {n}")
    return list(range(n - 2)), n - 2, n - 1


class _Bench:
    """One experiment's data, its train/validation/eval days, and the shared training recipe."""

    def __init__(self, base: str, name: str, days: int, rows_per_day: int, seed: int, preset: str) -> None:
        self.exp = Experiment(base, name)
        self.train_days, self.val_day, self.eval_day = _days(days)
        self.days = format_days(self.train_days)
        self.shards = self.exp.synth_shards(list(range(days)), rows_per_day, seed, preset)
        self.seed = seed
        self.about = (
            f"synth --preset {preset} --seed {seed}, {days} days x {rows_per_day:,} rows; searches on "
            f"days {self.days} (validation day {self.val_day}), every model trained on days {self.days} "
            f"(train preset small) and evaluated on day {self.eval_day}"
        )

    def train(self, model: list[str], name: str, *extra: str) -> dict[str, Any]:
        return self.exp.train(
            model,
            self.shards,
            self.days,
            self.eval_day,
            name,
            "--preset",
            PRESETS["train"],
            f"seed={self.seed}",
            *extra,
        )

    def train_arch(self, spec: dict[str, Any], name: str) -> dict[str, Any]:
        path = self.exp.write(f"{name}.json", json.dumps(spec))
        return self.train(["--arch", str(path)], name)

    def search(self, name: str, *extra: str, days: str | None = None) -> dict[str, Any]:
        """A search on ``days`` (default: the train days) with the search preset and ``extra``."""
        where = (self.shards, days or self.days, self.val_day, name)
        return self.exp.search("distdnas", *where, "--preset", PRESETS["search"], *extra)

    def baselines(self) -> dict[str, dict[str, Any]]:
        """DLRM, DCN-v2 and DeepFM: the hand-crafted models a found model must beat."""
        return {m: self.train(["--model", m], m) for m in BASELINES}


def _entropy(findings: dict[str, Any]) -> str:
    return "; ".join(", ".join(f"{e:.2f}" for e in findings["entropy"][k]) for k in ("dense", "sparse"))


def _kept(choice: list[list[list[str]]]) -> str:
    """Kept ops per block: dense ops · sparse ops, blocks separated by " / "."""
    return " / ".join("+".join(d) + " · " + "+".join(s) for d, s in choice)


# name: search overrides (on top of the small preset: lambda 5 -> 1, 2 epochs) of the
# separation check
SEPARATION = {
    "constant lambda 5 (the paper)": ["temperature_end=0", "epochs=1"],
    "arch warm-up 25%": ["temperature_end=0", "epochs=1", "arch_warmup=0.25"],
    "lambda 5 -> 1": ["temperature_end=1", "epochs=1"],
    "warm-up + lambda 5 -> 1": ["arch_warmup=0.25", "temperature_end=1", "epochs=1"],
    "warm-up + lambda 5 -> 1, arch lr x4": [
        "arch_warmup=0.25",
        "temperature_end=1",
        "arch_lr=0.2",
        "epochs=1",
    ],
    "op_norm": ["temperature_end=0", "epochs=1", "space.op_norm=true"],
    "lambda 5 -> 1, 2 epochs per day": ["temperature_end=1", "epochs=2"],
}


def separation(
    base: str,
    days: int = 5,
    rows_per_day: int = 100_000,
    seed: int = 0,
    preset: str = "tiny",
    settings: dict[str, list[str]] | None = None,
) -> str:
    """How separated the averaged weights end (entropy per block) and how the found model does,
    under the architecture warm-up, temperature annealing and a larger architecture step."""
    b = _Bench(base, "distdnas_separation", days, rows_per_day, seed, preset)
    ref = b.baselines()
    lines = [
        f"Run `{b.exp.dir}`: {b.about}. DLRM NE {ref['dlrm']['ne']:.4f}, DCN-v2 NE {ref['dcn_v2']['ne']:.4f} "
        f"({ref['dcn_v2']['flops'] / 1e6:.3f} MFLOPs).",
        "",
        "| search settings | entropy / log 5 per block (dense; sparse) | kept ops per block | MFLOPs | NE "
        "| rel. NE |",
        "|---|---|---|---:|---:|---:|",
    ]
    for i, (name, extra) in enumerate((settings or SEPARATION).items()):
        r = b.search(f"search_{i}", f"seed={seed}", *extra)
        m = b.train(["--arch", f"{r['dir']}/arch.json"], f"found_{i}")
        lines.append(
            f"| {name} ({' '.join(extra) or 'defaults'}) | {_entropy(r['findings'])} | "
            f"{_kept(r['findings']['choice'])} | {m['flops'] / 1e6:.3f} | {m['ne']:.4f} | "
            f"{m['ne'] / ref['dlrm']['ne']:.4f} |"
        )
    return "\n".join(lines)


def upper_bounds(
    base: str,
    days: int = 5,
    rows_per_day: int = 100_000,
    seed: int = 0,
    preset: str = "tiny",
    only: list[str] | None = None,
) -> str:
    """The best the space can hold, trained from scratch beside DLRM and DCN-v2: every op kept
    (the space before and after the 2026-12-02 fixes), DLRM and DCN-v2 written in the space,
    and the paper's sizes (N = 7, dim_d 256, N_s 16)."""
    import dataclasses

    from recsearch.search.distdnas.config import SpaceConfig
    from recsearch.search.distdnas.space import DENSE_OPS, SPARSE_OPS, arch_from_choice
    from recsearch.utils.config import preset_path, read_yaml

    b = _Bench(base, "distdnas_upper_bounds", days, rows_per_day, seed, preset)
    small = SpaceConfig(**read_yaml(preset_path("search/distdnas", PRESETS["search"]))["space"])
    paper = SpaceConfig(num_blocks=7, dense_dim=256, sparse_fields=16, emb_dim=16, head_hidden=[256])
    old: dict[str, Any] = {"pin_layers": 2, "shared_merger": False}

    def every(space: SpaceConfig) -> list[tuple[list[str], list[str]]]:
        return [(list(DENSE_OPS), list(SPARSE_OPS))] * space.num_blocks

    def chain(first: str, space: SpaceConfig) -> list[tuple[list[str], list[str]]]:
        return [([first], ["identity3d"])] + [(["linear"], ["identity3d"])] * (space.num_blocks - 1)

    dcn: dict[str, Any] = {"first_crossnet_layers": 7}
    wide: dict[str, Any] = {"head_hidden": [512, 256]}  # DLRM's top MLP and the paper's widths
    archs = {
        "every op kept (space before the fixes: PIN 2 layers, a merger per op)": (
            every(small),
            dataclasses.replace(small, **old),
        ),
        "every op kept": (every(small), small),
        "every op kept, op_norm": (every(small), dataclasses.replace(small, op_norm=True)),
        "every op kept, block 1 CrossNet x7": (every(small), dataclasses.replace(small, **dcn)),
        "DLRM in the space: DotProduct, then Linear": (chain("dot_product", small), small),
        "DCN-v2 in the space: CrossNet x7, then Linear": (
            chain("crossnet", small),
            dataclasses.replace(small, **dcn),
        ),
        "paper sizes, every op kept": (every(paper), paper),
        "paper sizes, DCN-v2 in the space": (chain("crossnet", paper), dataclasses.replace(paper, **dcn)),
        "head 512-256, every op kept": (every(small), dataclasses.replace(small, **wide)),
        "head 512-256, DLRM in the space": (chain("dot_product", small), dataclasses.replace(small, **wide)),
    }
    results = b.baselines()
    for i, (name, (choice, space)) in enumerate(archs.items()):
        # A full row name selects that row alone; any other string, every row containing it.
        if not only or any(o == name or (o in name and o not in archs) for o in only):
            results[name] = b.train_arch(arch_from_choice(choice, space, name=f"upper_{i}"), f"upper_{i}")
    return "\n".join(
        [
            f"Run `{b.exp.dir}`: {b.about}. Search space: the small preset's "
            f"({small.num_blocks} blocks, dim_d {small.dense_dim}, N_s {small.sparse_fields}) unless "
            "'paper sizes' (7 blocks, dim_d 256, N_s 16, head 256).",
            "",
            *metrics_table(results, b.exp.bayes(b.eval_day)),
        ]
    )


def temperature(
    base: str,
    days: int = 5,
    rows_per_day: int = 100_000,
    seed: int = 0,
    preset: str = "tiny",
    temperatures: tuple[float, ...] = (1, 2, 5, 10),
) -> str:
    """The Gumbel temperature lambda, judged noise-free: each lambda's day-0 supernet on the
    validation day (softmax(alpha / lambda) mixing, no Gumbel noise), no cost term."""
    b = _Bench(base, "distdnas_temperature", days, rows_per_day, seed, preset)
    lines = [
        f"Run `{b.exp.dir}`: {b.about}; one search job on day 0 per lambda (mode fresh over day 0, "
        "no cost term), its supernet scored on the validation day with noise-free weights.",
        "",
        "| lambda | val AUC | val NE | held-out NE (job's 2nd half, noise-free) "
        "| entropy / log 5 (dense; sparse) |",
        "|---:|---:|---:|---:|---|",
    ]
    for lam in temperatures:
        r = b.search(f"search_lambda{lam:g}", "--mode", "fresh", f"temperature={lam:g}", "cost_gamma=0",
                     f"seed={seed}", days="0")  # fmt: skip
        job = next(iter(r["findings"]["jobs"].values()))
        lines.append(
            f"| {lam:g} | {job['val']['auc']:.4f} | {job['val']['ne']:.4f} | {job['heldout']['ne']:.4f} | "
            f"{_entropy(r['findings'])} |"
        )
    return "\n".join(lines)


def random_baseline(
    base: str,
    days: int = 5,
    rows_per_day: int = 100_000,
    seeds: int = 3,
    preset: str = "tiny",
    randoms: int = 5,
    extra: list[str] | None = None,
    data_seed: int = 0,
) -> str:
    """Is the search better than chance? ``seeds`` searches (seeds 0..S-1) and ``randoms``
    random architectures of the same space at similar FLOPs (within 0.7-1.3x of the found
    models' mean), all trained with one recipe on one dataset (``synth --seed data_seed``:
    another seed is a dataset no choice was made on)."""
    from recsearch.data.shards import ShardInfo
    from recsearch.profile.counts import interaction_flops
    from recsearch.search.distdnas.config import SpaceConfig
    from recsearch.search.distdnas.space import arch_from_choice, sample_choice

    b = _Bench(base, "distdnas_random", days, rows_per_day, data_seed, preset)
    extra = list(extra or [])
    results = b.baselines()
    found = []
    for s in range(seeds):
        r = b.search(f"search_seed{s}", f"seed={s}", *extra)
        results[f"found, seed {s}"] = m = b.train(["--arch", f"{r['dir']}/arch.json"], f"found_{s}")
        found.append((r, m))
    archs = [read_json(f"{r['dir']}/arch.json") for r, _ in found]
    space = SpaceConfig(**archs[0]["meta"]["search_space"])
    info = ShardInfo.load(b.shards)
    num_dense, num_fields = len(info.dense_names), len(info.sparse_names + info.jagged_names)
    target = float(np.mean([interaction_flops(a, num_dense, num_fields, space.emb_dim) for a in archs]))
    rng = np.random.default_rng(12345)
    picked = 0
    for _ in range(5000):
        choice = sample_choice(rng, space)
        arch = arch_from_choice(choice, space, name=f"random_{picked}")
        if 0.7 <= interaction_flops(arch, num_dense, num_fields, space.emb_dim) / target <= 1.3:
            results[f"random {picked}"] = b.train_arch(arch, f"random_{picked}")
            picked += 1
            if picked == randoms:
                break
    found_ne = [m["ne"] for _, m in found]
    rand_ne = [m["ne"] for k, m in results.items() if k.startswith("random")]
    lines = [
        f"Run `{b.exp.dir}`: {b.about}. Search: small preset {' '.join(extra)}, seeds 0-{seeds - 1}; "
        f"{len(rand_ne)} random architectures of the same space with interaction FLOPs within 0.7-1.3x "
        f"of the found models' mean.",
        "",
        *metrics_table(results, b.exp.bayes(b.eval_day)),
        "",
        f"found NE {np.mean(found_ne):.4f} ± {np.std(found_ne):.4f} (mean ± sd over {seeds} seeds); "
        f"random NE {np.mean(rand_ne):.4f} ± {np.std(rand_ne):.4f}, best {min(rand_ne):.4f}; margin "
        f"(random mean − found mean) {np.mean(rand_ne) - np.mean(found_ne):+.4f} NE; "
        + ", ".join(f"{m} {results[m]['ne']:.4f}" for m in BASELINES)
        + ".",
        "",
        "Kept ops (dense | sparse per block):",
        *[f"- seed {s}: {_kept(r['findings']['choice'])}" for s, (r, _) in enumerate(found)],
    ]
    return "\n".join(lines)


def rows_per_day(
    base: str,
    total_rows: int = 200_000,
    per_day: tuple[int, ...] = (50_000, 100_000),
    seed: int = 0,
    preset: str = "tiny",
    extra: list[str] | None = None,
) -> str:
    """Per-day (distributed) vs one-shot search at a fixed number of search rows split into
    days of ``per_day`` rows (the paper's Table II setting): each found model trained on the
    same days, beside DLRM."""
    extra = list(extra or [])
    lines = [
        f"{total_rows:,} search rows split into days of R rows (synth --preset {preset} --seed {seed}, "
        f"a fresh dataset per R: the search days, then a validation and an evaluation day of R rows); "
        f"search: small preset {' '.join(extra)}; models trained on the search days (train preset small).",
        "",
        "| rows per day R | search days | search | search s | MFLOPs | NE | rel. NE vs DLRM | kept ops |",
        "|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for rows in per_day:
        if total_rows % rows:
            raise ValueError(f"{total_rows} rows do not split into days of {rows}")
        k = total_rows // rows
        b = _Bench(base, f"distdnas_rows{rows}", k + 2, rows, seed, preset)
        dlrm = b.train(["--model", "dlrm"], "dlrm")
        for mode in ("distributed", "one-shot"):
            r = b.search(f"search_{mode}", "--mode", mode, f"seed={seed}", *extra)
            m = b.train(["--arch", f"{r['dir']}/arch.json"], f"found_{mode}")
            secs = r["findings"]["search_seconds"]
            lines.append(
                f"| {rows:,} | {k} | {mode} | {secs:.0f} | {m['flops'] / 1e6:.3f} | "
                f"{m['ne']:.4f} | {m['ne'] / dlrm['ne']:.4f} | {_kept(r['findings']['choice'])} |"
            )
        lines.append(
            f"| {rows:,} | {k} | *DLRM* | | {dlrm['flops'] / 1e6:.3f} | {dlrm['ne']:.4f} | 1.0000 | |"
        )
        lines.append(f"| | | run `{b.exp.dir}` | | | | | |")
    return "\n".join(lines)
