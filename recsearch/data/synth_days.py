"""Write planted raw Criteo days, their true click probabilities and Bayes limits."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import torch
from iopath.common.file_io import g_pathmgr
from torchmetrics.functional.classification import binary_auroc
from tqdm import tqdm

from recsearch.data.criteo import MISSING_VALUE, NUM_DENSE, NUM_SPARSE, hex_encode
from recsearch.data.synth import _INT_MISSING, PRESETS, Teacher, make_teacher
from recsearch.utils.fileio import NpyStreamWriter, atomic_open, check_out_dir, read_json, write_json

_CHUNK_ROWS = 100_000
_WRITE_OPTS = dict(include_header=False, delimiter="\t", quoting_style="none")


@dataclass
class DayTruth:
    day: int
    rows: int
    ctr: float
    bayes_logloss: float
    bayes_auc: float


def _rows_table(labels: np.ndarray, ints: np.ndarray, cats: np.ndarray) -> pa.Table:
    cols: dict[str, pa.Array] = {"label": pa.array(labels)}
    for j in range(NUM_DENSE):
        cols[f"i{j}"] = pa.array(ints[:, j], mask=ints[:, j] == _INT_MISSING)
    for f in range(NUM_SPARSE):
        v = cats[:, f]
        missing = v == MISSING_VALUE
        hexes = hex_encode(np.where(missing, 0, v)).view("S8").reshape(-1)
        cols[f"c{f}"] = pa.array(hexes, type=pa.binary(), mask=missing).cast(pa.string())
    return pa.table(cols)


def write_day(
    out: str, teacher: Teacher, day: int, rows: int, compress: bool, bar: tqdm | None = None
) -> DayTruth:
    """Write ``day_{day}`` (or ``.gz``) and ``truth/day_{day}_prob.npy`` atomically."""
    rng = np.random.default_rng([teacher.seed, 0xDA7, day])
    name = f"{out}/day_{day}" + (".gz" if compress else "")
    probs, labels_all = [], []
    with atomic_open(name) as raw, NpyStreamWriter(f"{out}/truth/day_{day}_prob.npy", np.float32, 1) as pw:
        sink: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw  # type: ignore[assignment]
        for start in range(0, rows, _CHUNK_ROWS):
            n = min(_CHUNK_ROWS, rows - start)
            ints, cats = teacher.sample(day, n, rng)
            p = teacher.prob(day, ints, cats)
            labels = (rng.random(n) < p).astype(np.int8)
            buf = pa.BufferOutputStream()
            pacsv.write_csv(_rows_table(labels, ints, cats), buf, pacsv.WriteOptions(**_WRITE_OPTS))
            sink.write(buf.getvalue().to_pybytes())
            pw.append(p.astype(np.float32).reshape(-1, 1))
            probs.append(p)
            labels_all.append(labels)
            if bar is not None:
                bar.update(n)
        if compress:
            sink.close()
    p = np.concatenate(probs)
    y = np.concatenate(labels_all)
    return DayTruth(day=day, rows=rows, ctr=float(y.mean()), **bayes_limits(p, y))


def bayes_limits(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Logloss and AUC of the true probabilities on the drawn labels."""
    pc = np.clip(p, 1e-12, 1 - 1e-12)
    logloss = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
    auc = (
        float(binary_auroc(torch.from_numpy(p), torch.from_numpy(y.astype(np.int64))))
        if 0 < y.sum() < len(y)
        else float("nan")
    )
    return {"bayes_logloss": logloss, "bayes_auc": auc}


def synth(
    output: str,
    days: int | list[int],
    rows_per_day: int | None,
    preset: str,
    seed: int,
    compress: bool = False,
    keep_written: bool = False,
) -> dict[str, Any]:
    """Generate raw days under ``output`` (``days``: a list of day numbers, or a count N for
    days 0..N-1); returns the truth summary. Each day depends only on (preset, seed, day).

    ``keep_written``: a day already written by the same teacher with the same row count is
    kept as it is. Rewriting it would give the same bytes but a new mtime, and the shards'
    keys (and every checkpoint trained on them) follow the raw files' mtimes."""
    day_list = list(range(days)) if isinstance(days, int) else sorted(set(days))
    if not day_list or min(day_list) < 0:
        raise ValueError("--days must name at least one day >= 0")
    teacher = make_teacher(preset, seed)
    rows = rows_per_day if rows_per_day is not None else PRESETS[preset].rows_per_day
    if rows < 1:
        raise ValueError("--rows-per-day must be >= 1")
    check_out_dir(output)
    known = _days_of_same_teacher(output, teacher, preset, seed)
    g_pathmgr.mkdirs(f"{output}/truth")
    write_json(f"{output}/truth/teacher.json", teacher.to_json())
    truths = []
    total = len(day_list) * rows
    with tqdm(total=total, unit=" rows", unit_scale=True, desc="synth", dynamic_ncols=True) as bar:
        for d in day_list:
            if keep_written and _written(output, known.get(d), d, rows, compress):
                truths.append(DayTruth(**known[d]))
                bar.update(rows)
                continue
            truths.append(write_day(output, teacher, d, rows, compress, bar))
    known.update({t.day: t.__dict__ for t in truths})
    summary = {
        "preset": preset,
        "seed": seed,
        "rows_per_day": rows,
        "days": [known[d] for d in sorted(known)],
    }
    write_json(f"{output}/truth/bayes.json", summary)
    return {**summary, "days": [t.__dict__ for t in truths]}


def _written(output: str, truth: dict[str, Any] | None, day: int, rows: int, compress: bool) -> bool:
    """Whether ``day`` is complete in ``output``: both files are published atomically, and the
    truth record (written after every day of a call) has this row count."""
    name = f"{output}/day_{day}" + (".gz" if compress else "")
    return (
        truth is not None
        and set(truth) == set(DayTruth.__dataclass_fields__)
        and truth["rows"] == rows
        and g_pathmgr.exists(name)
        and g_pathmgr.exists(f"{output}/truth/day_{day}_prob.npy")
    )


def _days_of_same_teacher(output: str, teacher: Teacher, preset: str, seed: int) -> dict[int, dict[str, Any]]:
    """Truth of days already in ``output`` from the same teacher (kept and merged); days of
    another teacher (preset or seed) are refused rather than mixed."""
    path = f"{output}/truth/teacher.json"
    if not g_pathmgr.exists(path):
        return {}
    try:
        old = read_json(path)
    except ValueError:
        old = None
    if old != json.loads(json.dumps(teacher.to_json())):
        raise ValueError(
            f"{output} holds days of another synth (not preset {preset!r} with seed {seed}); "
            "write them to a new --out, or delete that directory first"
        )
    try:
        return {int(d["day"]): d for d in read_json(f"{output}/truth/bayes.json")["days"]}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}
