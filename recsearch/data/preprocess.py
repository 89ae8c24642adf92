"""``recsearch preprocess``: raw Criteo days -> per-day binary shards.

Two streaming passes over the raw files, each parallel over days:
1. count every categorical value of the vocabulary days (cached per day);
2. rank values into frequency-sorted vocabularies, then remap each day and write
   its shards.
Each day's outputs appear atomically and end with a completion record holding
their checksums; a rerun verifies and skips completed days, and redoes the
rest byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from iopath.common.file_io import g_pathmgr
from tqdm import tqdm

from recsearch.data.criteo import (
    DENSE_NAMES,
    DENSE_TRANSFORM,
    FIRST_VALUE_ID,
    MISSING_ID,
    MISSING_VALUE,
    NUM_DENSE,
    NUM_SPARSE,
    OOV_ID,
    SPARSE_NAMES,
    format_days,
    parse_day_file_name,
)
from recsearch.data.rawio import DEFAULT_BLOCK_BYTES, RawFormatError, iter_parsed
from recsearch.data.shards import DayShardWriter, verified_day_record, write_manifest
from recsearch.data.vocab import FieldCounter, FieldVocab, IdMap
from recsearch.utils.fileio import read_json, remove_stale_tmp, save_npy, write_json

_FORMAT = "recsearch-criteo-shards-1"


@dataclass(frozen=True)
class PreprocessOptions:
    """Options of one preprocessing run (they determine the output bytes)."""

    days: tuple[int, ...]
    vocab_days: tuple[int, ...]
    max_rows_per_table: int = 5_000_000
    on_bad_line: str = "error"
    workers: int = 2
    block_bytes: int = DEFAULT_BLOCK_BYTES

    def __post_init__(self) -> None:
        if self.on_bad_line not in ("error", "skip"):
            raise ValueError(f"--on-bad-line must be 'error' or 'skip', got {self.on_bad_line!r}")
        if self.max_rows_per_table < FIRST_VALUE_ID + 1:
            raise ValueError(f"--max-rows-per-table must be >= {FIRST_VALUE_ID + 1}")
        if self.workers < 1:
            raise ValueError("--workers must be >= 1")
        extra = sorted(set(self.vocab_days) - set(self.days))
        if extra:
            raise ValueError(f"--vocab-days {extra} are not among --days {format_days(list(self.days))}")


def find_day_files(input_dir: str, days: tuple[int, ...] | list[int]) -> dict[int, str]:
    """Map each requested day to its raw file (``day_N`` or ``day_N.gz``)."""
    if not g_pathmgr.isdir(input_dir):
        raise ValueError(f"--input {input_dir} is not a directory")
    found: dict[int, list[str]] = {}
    for name in g_pathmgr.ls(input_dir):
        day = parse_day_file_name(name)
        if day is not None:
            found.setdefault(day, []).append(name)
    missing = [d for d in days if d not in found]
    if missing:
        have = format_days(sorted(found)) or "none"
        raise ValueError(
            f"{input_dir}: no raw file for day(s) {format_days(missing)} "
            f"(expected day_N or day_N.gz; days present: {have})"
        )
    out = {}
    for d in days:
        if len(found[d]) > 1:
            raise ValueError(f"{input_dir}: day {d} has several files {sorted(found[d])}; keep one")
        out[d] = f"{input_dir.rstrip('/')}/{found[d][0]}"
    return out


def _source_id(path: str) -> dict[str, Any]:
    st = os.stat(g_pathmgr.get_local_path(path))
    return {"file": path.rsplit("/", 1)[-1], "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([_FORMAT, *parts], sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- workers
_progress_q: Any = None


def _init_worker(q: Any, threads: int) -> None:
    global _progress_q
    _progress_q = q
    import pyarrow as pa

    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)


def _report(raw_bytes: int, rows: int) -> None:
    if _progress_q is not None:
        _progress_q.put((raw_bytes, rows))


def _count_day(path: str, out: str, day: int, skip_bad: bool, block_bytes: int, key: str) -> None:
    counters = [FieldCounter() for _ in range(NUM_SPARSE)]
    last = rows = skipped = 0
    for block in iter_parsed(path, skip_bad, block_bytes):
        for i, counter in enumerate(counters):
            counter.add(block.cats[:, i])
        rows += len(block.labels)
        skipped += block.skipped
        _report(block.raw_pos - last, len(block.labels))
        last = block.raw_pos
    parts = []
    for i, counter in enumerate(counters):
        keys, counts = counter.result()
        parts.append(np.stack([np.full(len(keys), i, np.int64), keys, counts], axis=1))
    save_npy(f"{out}/counts/day_{day}.npy", np.concatenate(parts))
    write_json(f"{out}/counts/day_{day}.json", {"key": key, "rows": rows, "skipped_lines": skipped})


def _convert_day(path: str, out: str, day: int, skip_bad: bool, block_bytes: int, key: str) -> None:
    maps = [IdMap(v) for v in load_vocab(out)]
    writer = DayShardWriter(out, day, NUM_DENSE, NUM_SPARSE)
    last = skipped = 0
    try:
        for block in iter_parsed(path, skip_bad, block_bytes):
            sparse = np.empty(block.cats.shape, np.int32)
            for i, m in enumerate(maps):
                sparse[:, i] = m.lookup(block.cats[:, i])
            writer.append(block.dense, sparse, block.labels)
            skipped += block.skipped
            _report(block.raw_pos - last, len(block.labels))
            last = block.raw_pos
    except BaseException:
        writer.abort()
        raise
    writer.finish({"key": key, "source": path.rsplit("/", 1)[-1], "skipped_lines": skipped})


# ---------------------------------------------------------------- vocab files
def _vocab_path(out: str, i: int, what: str) -> str:
    return f"{out}/vocab/{SPARSE_NAMES[i]}_{what}.npy"


def save_vocab(out: str, vocabs: list[FieldVocab]) -> None:
    for i, v in enumerate(vocabs):
        save_npy(_vocab_path(out, i, "values"), v.values)
        save_npy(_vocab_path(out, i, "counts"), v.counts)


def load_vocab(out: str) -> list[FieldVocab]:
    """Per-field vocabularies of a shard directory (values and frequency counts)."""
    return [
        FieldVocab(
            values=np.load(g_pathmgr.get_local_path(_vocab_path(out, i, "values"))),
            counts=np.load(g_pathmgr.get_local_path(_vocab_path(out, i, "counts"))),
        )
        for i in range(NUM_SPARSE)
    ]


# ---------------------------------------------------------------- driver
class _Progress:
    """One progress bar over raw bytes read, with rows and rows/s."""

    def __init__(self, total_bytes: int, desc: str) -> None:
        self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=desc, dynamic_ncols=True)
        self.rows = 0
        self.start = time.monotonic()

    def put(self, item: tuple[int, int]) -> None:
        nbytes, nrows = item
        self.rows += nrows
        self.bar.update(nbytes)
        rate = self.rows / max(time.monotonic() - self.start, 1e-9)
        self.bar.set_postfix(rows=f"{self.rows:,}", rows_per_s=f"{rate:,.0f}", refresh=False)


def _run_parallel(
    fn: Callable[..., None], jobs: list[tuple[Any, ...]], total_bytes: int, workers: int, desc: str
) -> None:
    """Run ``fn(*job)`` for each job, in worker processes when there are several."""
    global _progress_q
    if not jobs:
        return
    progress = _Progress(total_bytes, desc)
    n = min(workers, len(jobs))
    try:
        if n == 1:  # in this process: no start-up cost, and memory is measured where it is used
            _progress_q = progress
            for job in jobs:
                fn(*job)
            return
        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            q = manager.Queue()
            init = (q, max(1, (os.cpu_count() or 1) // n))
            with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
                pending: set[Future[None]] = {pool.submit(fn, *job) for job in jobs}
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    while True:
                        try:
                            progress.put(q.get_nowait())
                        except queue.Empty:
                            break
                    for f in done:
                        exc = f.exception()
                        if exc is not None:
                            for p in pending:
                                p.cancel()
                            raise exc
    finally:
        _progress_q = None
        progress.bar.close()


def preprocess(input_dir: str, output_dir: str, options: PreprocessOptions) -> dict[str, Any]:
    """Convert raw days into shards under ``output_dir``; returns the manifest."""
    files = find_day_files(input_dir, options.days)
    out = output_dir.rstrip("/")
    for sub in ("", "/counts", "/vocab"):
        g_pathmgr.mkdirs(out + sub)
        remove_stale_tmp(out + sub)
    skip_bad = options.on_bad_line == "skip"
    sizes = {d: _source_id(p)["bytes"] for d, p in files.items()}
    for d, size in sizes.items():
        if size == 0:
            raise RawFormatError(f"{files[d]}: file is empty (0 rows); remove it or regenerate the day")

    # Pass 1: per-day frequency counts of the vocabulary days (cached).
    count_keys = {d: _key("count", _source_id(files[d]), options.on_bad_line) for d in options.vocab_days}
    todo = [d for d in options.vocab_days if not _counts_done(out, d, count_keys[d])]
    _run_parallel(
        _count_day,
        [(files[d], out, d, skip_bad, options.block_bytes, count_keys[d]) for d in todo],
        sum(sizes[d] for d in todo),
        options.workers,
        "count vocab days",
    )
    vocabs, distinct = _build_vocab(out, options)
    save_vocab(out, vocabs)

    # Pass 2: remap and write shards of every day.
    vocab_key = _key([count_keys[d] for d in options.vocab_days], options.max_rows_per_table)
    day_keys = {d: _key("day", _source_id(files[d]), options.on_bad_line, vocab_key) for d in options.days}
    records = {d: verified_day_record(out, d, day_keys[d]) for d in options.days}
    todo = [d for d in options.days if records[d] is None]
    if len(todo) < len(options.days):
        done = format_days([d for d in options.days if records[d] is not None])
        print(f"days {done}: already complete and verified, skipped")
    _run_parallel(
        _convert_day,
        [(files[d], out, d, skip_bad, options.block_bytes, day_keys[d]) for d in todo],
        sum(sizes[d] for d in todo),
        options.workers,
        "write shards",
    )
    records = {d: verified_day_record(out, d, day_keys[d]) for d in options.days}
    assert all(records.values()), "a day finished without a valid completion record"

    manifest = {
        "dataset": "criteo",
        "dense_names": DENSE_NAMES,
        "sparse_names": SPARSE_NAMES,
        "dense_transform": DENSE_TRANSFORM,
        "reserved_ids": {"missing": MISSING_ID, "rare_or_unseen": OOV_ID, "first_value": FIRST_VALUE_ID},
        "num_embeddings": [v.num_rows for v in vocabs],
        "distinct_values": distinct,
        "vocab_files": {
            SPARSE_NAMES[i]: {
                "values": f"vocab/{SPARSE_NAMES[i]}_values.npy",
                "counts": f"vocab/{SPARSE_NAMES[i]}_counts.npy",
            }
            for i in range(NUM_SPARSE)
        },
        "days": {
            str(d): {k: r[k] for k in ("rows", "skipped_lines", "source", "files")}
            for d, r in records.items()
            if r is not None
        },
        "skipped_lines": sum(int(r["skipped_lines"]) for r in records.values() if r is not None),
        "options": {
            **{k: v for k, v in asdict(options).items() if k not in ("workers", "block_bytes")},
            "days": format_days(list(options.days)),
            "vocab_days": format_days(list(options.vocab_days)),
        },
    }
    write_manifest(out, manifest)
    return manifest


def _counts_done(out: str, day: int, key: str) -> bool:
    path = f"{out}/counts/day_{day}.json"
    return (
        g_pathmgr.exists(path)
        and g_pathmgr.exists(f"{out}/counts/day_{day}.npy")
        and read_json(path).get("key") == key
    )


def _build_vocab(out: str, options: PreprocessOptions) -> tuple[list[FieldVocab], list[int]]:
    """Frequency-ranked vocabularies and each field's distinct non-missing values."""
    counters = [FieldCounter() for _ in range(NUM_SPARSE)]
    for d in options.vocab_days:
        table = np.load(g_pathmgr.get_local_path(f"{out}/counts/day_{d}.npy"))
        bounds = np.searchsorted(table[:, 0], np.arange(NUM_SPARSE + 1))
        for i, counter in enumerate(counters):
            part = table[bounds[i] : bounds[i + 1]]
            counter.add_counts(part[:, 1], part[:, 2])
    results = [c.result() for c in counters]
    vocabs = [FieldVocab.build(keys, counts, options.max_rows_per_table) for keys, counts in results]
    distinct = [int((keys != MISSING_VALUE).sum()) for keys, _ in results]
    return vocabs, distinct
