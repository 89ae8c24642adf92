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
    shard_path,
)
from recsearch.data.rawio import DEFAULT_BLOCK_BYTES, ParsedBlock, RawFormatError, iter_parsed
from recsearch.data.shards import verified_day_record, write_day_record, write_manifest
from recsearch.data.vocab import FieldCounter, FieldVocab, IdMap, value_counts_masked
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import (
    NpyStreamWriter,
    check_out_dir,
    commit,
    iter_npy_rows,
    read_json,
    remove_stale_tmp,
    save_npy,
    write_json,
)

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


def raw_day_files(input_dir: str) -> dict[int, list[str]]:
    """Day number -> raw file names (``day_N`` / ``day_N.gz``) in ``input_dir``."""
    if not g_pathmgr.isdir(input_dir):
        raise ValueError(f"--input {input_dir} is not a directory")
    found: dict[int, list[str]] = {}
    for name in g_pathmgr.ls(input_dir):
        day = parse_day_file_name(name)
        if day is not None:
            found.setdefault(day, []).append(name)
    return found


def default_vocab_days(days: list[int]) -> list[int]:
    """All days but the last (the held-out day), as Criteo's 0-22 for days 0-23."""
    return days[:-1] or days


def find_day_files(input_dir: str, days: tuple[int, ...] | list[int]) -> dict[int, str]:
    """Map each requested day to its raw file (``day_N`` or ``day_N.gz``)."""
    found = raw_day_files(input_dir)
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


def _parsed_path(out: str, day: int, kind: str) -> str:
    return f"{out}/parsed/day_{day}_{kind}.npy"


def _parse_day(
    path: str, out: str, day: int, skip_bad: bool, block_bytes: int, key: str, count_key: str | None
) -> None:
    """Pass 1: parse a raw day once into binary intermediates (and count its values).

    Writes ``parsed/day_{d}_{dense,labels}.npy`` (final shard content),
    ``parsed/day_{d}_values.npy`` (uint32 raw categorical values, N x 26) and
    ``parsed/day_{d}_missing.npy`` (uint32 bitmask of empty fields, N x 1), so the
    second pass never parses text again.
    """
    counters = [FieldCounter() for _ in range(NUM_SPARSE)] if count_key else []
    writers = {
        "dense": NpyStreamWriter(_parsed_path(out, day, "dense"), np.float32, NUM_DENSE),
        "labels": NpyStreamWriter(_parsed_path(out, day, "labels"), np.int32, 1),
        "values": NpyStreamWriter(_parsed_path(out, day, "values"), np.uint32, NUM_SPARSE),
        "missing": NpyStreamWriter(_parsed_path(out, day, "missing"), np.uint32, 1),
    }
    bits = np.uint32(1) << np.arange(NUM_SPARSE, dtype=np.uint32)

    def pack(block: ParsedBlock) -> tuple[ParsedBlock, np.ndarray, np.ndarray, list[Any]]:
        """Per-block work done in the parsing threads: storage layout and value counts."""
        values = np.ascontiguousarray(block.values.T)
        missing = (block.missing * bits[:, None]).sum(axis=0, dtype=np.uint32)[:, None]
        counts = [value_counts_masked(block.values[i], block.missing[i]) for i in range(len(counters))]
        return block, values, missing, counts

    last = rows = skipped = 0
    try:
        for block, values, missing, counts in iter_parsed(path, skip_bad, block_bytes, then=pack):
            writers["dense"].append(block.dense)
            writers["labels"].append(block.labels.reshape(-1, 1))
            writers["values"].append(values)
            writers["missing"].append(missing)
            for counter, (keys, n) in zip(counters, counts, strict=True):
                counter.add_counts(keys, n)
            rows += len(block.labels)
            skipped += block.skipped
            _report(block.raw_pos - last, len(block.labels))
            last = block.raw_pos
        if rows == 0:
            raise RawFormatError(
                f"{path}: no rows left ({skipped:,} line(s) skipped as malformed); a day needs rows: "
                "fix or replace the file"
            )
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()
    if count_key:
        parts = []
        for i, counter in enumerate(counters):
            keys, freq = counter.result()
            parts.append(np.stack([np.full(len(keys), i, np.int64), keys, freq], axis=1))
        save_npy(f"{out}/counts/day_{day}.npy", np.concatenate(parts))
        write_json(f"{out}/counts/day_{day}.json", {"key": count_key, "rows": rows, "skipped_lines": skipped})
    sizes = {kind: _size(_parsed_path(out, day, kind)) for kind in ("dense", "labels")}
    record = {"key": key, "rows": rows, "skipped_lines": skipped, "bytes": sizes}
    write_json(f"{out}/parsed/day_{day}.json", record)
    fault_point("day-parsed")


def _size(path: str) -> int:
    return os.stat(g_pathmgr.get_local_path(path)).st_size


def _parsed_usable(out: str, day: int) -> bool:
    """Whether a parsed day can still be finished: each of its dense/labels files is either
    still in ``parsed/`` or was already moved to its final name by a run that was killed
    before the day's completion record (same size as recorded)."""
    try:
        sizes = read_json(f"{out}/parsed/day_{day}.json").get("bytes", {})
    except (FileNotFoundError, ValueError):
        return False
    for kind in ("dense", "labels"):
        final = shard_path(out, day, kind)
        if g_pathmgr.exists(_parsed_path(out, day, kind)):
            continue
        if not (g_pathmgr.exists(final) and _size(final) == sizes.get(kind)):
            return False
    return g_pathmgr.exists(_parsed_path(out, day, "values")) and g_pathmgr.exists(
        _parsed_path(out, day, "missing")
    )


_maps_cache: dict[str, list[IdMap]] = {}


def _id_maps(out: str, vocab_key: str) -> list[IdMap]:
    """The vocabulary's id maps, built once per worker process."""
    if vocab_key not in _maps_cache:
        _maps_cache.clear()
        _maps_cache[vocab_key] = [IdMap(v) for v in load_vocab(out)]
    return _maps_cache[vocab_key]


def _finish_day(out: str, day: int, key: str, vocab_key: str, source: str, raw_bytes: int) -> None:
    """Pass 2: remap a parsed day's values to ids and publish its shards."""
    maps = _id_maps(out, vocab_key)
    parsed = read_json(f"{out}/parsed/day_{day}.json")
    rows = int(parsed["rows"])
    chunks = zip(
        iter_npy_rows(_parsed_path(out, day, "values"), _REMAP_ROWS),
        iter_npy_rows(_parsed_path(out, day, "missing"), _REMAP_ROWS),
        strict=True,
    )
    with NpyStreamWriter(shard_path(out, day, "sparse"), np.int32, NUM_SPARSE) as sparse:
        for values, missing in chunks:
            ids = np.empty(values.shape, np.int32)
            mbits = missing[:, 0]
            cols = np.ascontiguousarray(values.T)  # (26, rows): a field per row
            for i, m in enumerate(maps):
                ids[:, i] = m.lookup(cols[i], (mbits >> np.uint32(i)) & np.uint32(1) == 1)
            sparse.append(ids)
            _report(raw_bytes * len(ids) // max(rows, 1), len(ids))
    for kind in ("dense", "labels"):  # idempotent: a killed run may have moved some already
        if g_pathmgr.exists(_parsed_path(out, day, kind)):
            commit(_parsed_path(out, day, kind), shard_path(out, day, kind))
    fault_point("shards-committed")
    write_day_record(
        out,
        day,
        ["dense", "sparse", "labels"],
        {"key": key, "source": source, "skipped_lines": parsed["skipped_lines"]},
    )
    fault_point("day-record-written")
    for kind in ("values", "missing"):
        g_pathmgr.rm(_parsed_path(out, day, kind))
    g_pathmgr.rm(f"{out}/parsed/day_{day}.json")


_REMAP_ROWS = 1 << 18


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
    check_out_dir(output_dir)
    out = output_dir.rstrip("/")
    for sub in ("", "/counts", "/vocab", "/parsed"):
        g_pathmgr.mkdirs(out + sub)
        remove_stale_tmp(out + sub)
    skip_bad = options.on_bad_line == "skip"
    sources = {d: _source_id(p) for d, p in files.items()}  # one stat per file
    sizes = {d: src["bytes"] for d, src in sources.items()}
    for d, size in sizes.items():
        if size == 0:
            raise RawFormatError(f"{files[d]}: file is empty (0 rows); remove it or regenerate the day")

    # Pass 1: parse each raw day once into binary intermediates; count the vocabulary days.
    count_keys = {d: _key("count", sources[d], options.on_bad_line) for d in options.vocab_days}
    vocab_key = _key([count_keys[d] for d in options.vocab_days], options.max_rows_per_table)
    parse_keys = {d: _key("parse", sources[d], options.on_bad_line) for d in options.days}
    day_keys = {d: _key("day", parse_keys[d], vocab_key) for d in options.days}
    complete = {d for d in options.days if verified_day_record(out, d, day_keys[d]) is not None}
    if complete:
        print(f"days {format_days(sorted(complete))}: already complete and verified, skipped")
    todo = [
        d
        for d in options.days
        if (d in count_keys and not _done(out, f"counts/day_{d}", count_keys[d]))
        or (
            d not in complete
            and not (_done(out, f"parsed/day_{d}", parse_keys[d]) and _parsed_usable(out, d))
        )
    ]
    _run_parallel(
        _parse_day,
        [(files[d], out, d, skip_bad, options.block_bytes, parse_keys[d], count_keys.get(d)) for d in todo],
        sum(sizes[d] for d in todo),
        options.workers,
        "parse days",
    )
    vocabs, distinct = _build_vocab(out, options)
    save_vocab(out, vocabs)

    # Pass 2: remap every incomplete day's values to ids and publish its shards.
    todo = [d for d in options.days if d not in complete]
    _run_parallel(
        _finish_day,
        [(out, d, day_keys[d], vocab_key, files[d].rsplit("/", 1)[-1], sizes[d]) for d in todo],
        sum(sizes[d] for d in todo),
        options.workers,
        "write shards",
    )
    _remove_intermediates(out)
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


def _done(out: str, stem: str, key: str) -> bool:
    """Whether ``{stem}.json`` records a finished step with this key."""
    path = f"{out}/{stem}.json"
    return g_pathmgr.exists(path) and read_json(path).get("key") == key


def _remove_intermediates(out: str) -> None:
    """Drop pass-1 files of days that are complete (e.g. re-parsed only to recount)."""
    for name in g_pathmgr.ls(f"{out}/parsed"):
        g_pathmgr.rm(f"{out}/parsed/{name}")


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
