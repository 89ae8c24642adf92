"""Pass 1 of ``recsearch preprocess``: day files cut into byte ranges, each parsed once.

A plain day file is cut into byte ranges of whole lines (a few per worker, so the
pool balances ranges that parse at different speeds); a ``.gz`` day is one range
(a gzip stream cannot be entered mid-way) parsed in several threads. Each range is
parsed into binary intermediates (``parsed/``) and, for vocabulary days, its values
are counted (``counts/``); a range's record is written last, so a killed run redoes
only the ranges without one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import NUM_DENSE, NUM_SPARSE
from recsearch.data.rawio import ParsedBlock, RawFormatError, iter_parsed, split_lines
from recsearch.data.vocab import FieldCounter, value_counts_masked
from recsearch.data.workers import report, run_parallel, threads
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import NpyStreamWriter, read_json, remove_stale_tmp, save_npy, write_json

if TYPE_CHECKING:
    from recsearch.data.preprocess import PreprocessOptions

_FORMAT = "recsearch-criteo-shards-1"
MIN_RANGE_BYTES = 16 << 20  # smaller day files are not split: a range's set-up would dominate
RANGES_PER_WORKER = 4
INTERMEDIATES = ("dense", "labels", "values", "missing")


def source_id(path: str) -> dict[str, Any]:
    st = os.stat(g_pathmgr.get_local_path(path))
    return {"file": path.rsplit("/", 1)[-1], "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def content_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([_FORMAT, *parts], sort_keys=True).encode()).hexdigest()[:16]


def source_key(source: dict[str, Any], options: PreprocessOptions) -> str:
    """What a day's content depends on besides the vocabulary (not how it is split up)."""
    return content_key("source", source, options.on_bad_line)


@dataclass(frozen=True)
class Range:
    """A byte range ``[start, end)`` of whole lines of a day file (``end`` None: to the end)."""

    day: int
    index: int
    path: str
    start: int
    end: int | None
    key: str  # identifies the parse of this range: source, options, bounds

    @property
    def stem(self) -> str:
        return f"day_{self.day}.r{self.index}"

    def parsed(self, out: str, kind: str) -> str:
        return f"{out}/parsed/{self.stem}_{kind}.npy"


def plan_ranges(
    files: dict[int, str], sources: dict[int, dict[str, Any]], options: PreprocessOptions
) -> dict[int, list[Range]]:
    """Each day's byte ranges: ``workers`` ranges of at least ``min_range_bytes``; one for .gz."""
    plan: dict[int, list[Range]] = {}
    for d, path in files.items():
        size = sources[d]["bytes"]
        # a few ranges per worker: the pool balances ranges that parse at different speeds
        per_worker = RANGES_PER_WORKER if options.workers > 1 else 1
        wanted = options.workers * per_worker
        parts = 1 if path.endswith(".gz") else max(1, min(wanted, size // options.min_range_bytes))
        bounds: list[tuple[int, int | None]] = (
            list(split_lines(path, size, parts)) if parts > 1 else [(0, None)]
        )
        source = source_key(sources[d], options)
        plan[d] = [
            Range(d, i, path, a, b, content_key("parse", source, a, b)) for i, (a, b) in enumerate(bounds)
        ]
    return plan


def parse_range(r: Range, out: str, skip_bad: bool, block_bytes: int, count: bool) -> None:
    """Pass 1: parse a range once into binary intermediates (and count its values).

    Writes ``parsed/<range>_{dense,labels}.npy`` (final shard content),
    ``parsed/<range>_values.npy`` (uint32 raw categorical values, N x 26) and
    ``parsed/<range>_missing.npy`` (uint32 bitmask of empty fields, N x 1), then the
    counts (``parsed/<range>_counts.npy``) and last the range's record ``parsed/<range>.json``.
    """
    counters = [FieldCounter() for _ in range(NUM_SPARSE)] if count else []
    writers = {
        "dense": NpyStreamWriter(r.parsed(out, "dense"), np.float32, NUM_DENSE),
        "labels": NpyStreamWriter(r.parsed(out, "labels"), np.int32, 1),
        "values": NpyStreamWriter(r.parsed(out, "values"), np.uint32, NUM_SPARSE),
        "missing": NpyStreamWriter(r.parsed(out, "missing"), np.uint32, 1),
    }
    bits = np.uint32(1) << np.arange(NUM_SPARSE, dtype=np.uint32)

    def pack(block: ParsedBlock) -> tuple[ParsedBlock, np.ndarray, np.ndarray, list[Any]]:
        """Per-block work done in the parsing threads: storage layout and value counts."""
        values = np.ascontiguousarray(block.values.T)
        missing = (block.missing * bits[:, None]).sum(axis=0, dtype=np.uint32)[:, None]
        counts = [value_counts_masked(block.values[i], block.missing[i]) for i in range(len(counters))]
        return block, values, missing, counts

    last = r.start
    rows = skipped = 0
    try:
        blocks = iter_parsed(r.path, skip_bad, block_bytes, threads(), pack, r.start, r.end)
        for block, values, missing, counts in blocks:
            writers["dense"].append(block.dense)
            writers["labels"].append(block.labels.reshape(-1, 1))
            writers["values"].append(values)
            writers["missing"].append(missing)
            for counter, (keys, n) in zip(counters, counts, strict=True):
                counter.add_counts(keys, n)
            rows += len(block.labels)
            skipped += block.skipped
            report(block.raw_pos - last, len(block.labels))
            last = block.raw_pos
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()
    if count:
        parts = []
        for i, counter in enumerate(counters):
            keys, freq = counter.result()
            parts.append(np.stack([np.full(len(keys), i, np.int64), keys, freq], axis=1))
        save_npy(r.parsed(out, "counts"), np.concatenate(parts))
    write_json(f"{out}/parsed/{r.stem}.json", {"key": r.key, "rows": rows, "skipped_lines": skipped})
    fault_point("day-parsed")


def _done(out: str, stem: str, key: str) -> bool:
    """Whether ``{stem}.json`` records a finished step with this key."""
    path = f"{out}/{stem}.json"
    try:
        return g_pathmgr.exists(path) and read_json(path).get("key") == key
    except ValueError:  # a record damaged by a crash of the machine: redo the step
        return False


def _parsed_done(out: str, r: Range, count: bool) -> bool:
    """Whether this range's intermediates (and, with ``count``, its value counts) are complete."""
    if not _done(out, f"parsed/{r.stem}", r.key):
        return False
    kinds = [*INTERMEDIATES, *(["counts"] if count else [])]
    return all(g_pathmgr.exists(r.parsed(out, k)) for k in kinds)


def day_counts_done(out: str, day: int, key: str) -> bool:
    """Whether a vocabulary day's value counts are saved (``counts/day_D.npy``, by content)."""
    return _done(out, f"counts/day_{day}", key) and g_pathmgr.exists(f"{out}/counts/day_{day}.npy")


def to_parse(
    ranges: dict[int, list[Range]],
    days: list[int],
    complete: set[int],
    count_keys: dict[int, str],
    out: str,
) -> list[tuple[Range, bool]]:
    """(range, count its values?) of every range whose pass 1 must run (again): the ranges of
    unfinished days, and of vocabulary days (``count_keys``) whose counts are not saved."""
    todo = []
    for d in days:
        count = d in count_keys and not day_counts_done(out, d, count_keys[d])
        for r in ranges[d]:
            if (count or d not in complete) and not _parsed_done(out, r, count):
                todo.append((r, count))
    return todo


def count_tables(out: str, day: int, key: str, ranges: list[Range]) -> list[str]:
    """The files holding a vocabulary day's value counts: its saved day table, or (before
    that is saved) its ranges' tables."""
    if day_counts_done(out, day, key):
        return [f"{out}/counts/day_{day}.npy"]
    return [r.parsed(out, "counts") for r in ranges]


def save_day_counts(out: str, day: int, key: str, ranges: list[Range]) -> None:
    """A vocabulary day's counts merged from its ranges' (the same bytes however the day was
    split): ``counts/day_D.npy`` and its record, kept so later runs need not parse it again."""
    counters = [FieldCounter() for _ in range(NUM_SPARSE)]
    for r in ranges:
        add_count_table(counters, np.load(g_pathmgr.get_local_path(r.parsed(out, "counts"))))
    parts = []
    for i, counter in enumerate(counters):
        keys, freq = counter.result()
        parts.append(np.stack([np.full(len(keys), i, np.int64), keys, freq], axis=1))
    save_npy(f"{out}/counts/day_{day}.npy", np.concatenate(parts))
    write_json(f"{out}/counts/day_{day}.json", {"key": key})


def add_count_table(counters: list[FieldCounter], table: np.ndarray) -> None:
    """Add a saved (field, value, count) table, sorted by field, to per-field counters."""
    bounds = np.searchsorted(table[:, 0], np.arange(NUM_SPARSE + 1))
    for i, counter in enumerate(counters):
        part = table[bounds[i] : bounds[i + 1]]
        counter.add_counts(part[:, 1], part[:, 2])


def parse_ranges(
    todo: list[tuple[Range, bool]], out: str, options: PreprocessOptions, sources: dict[int, dict[str, Any]]
) -> None:
    skip_bad = options.on_bad_line == "skip"
    jobs = [(r, out, skip_bad, options.block_bytes, count) for r, count in todo]
    size = sum(((r.end or sources[r.day]["bytes"]) - r.start) for r, _ in todo)
    run_parallel(parse_range, jobs, size, options.workers, options.threads_per_worker, "parse days")
    for d in sorted({r.day for r, _ in todo}):
        infos = [read_json(f"{out}/parsed/{r.stem}.json") for r, _ in todo if r.day == d]
        if sum(i["rows"] for i in infos) == 0:
            path = next(r.path for r, _ in todo if r.day == d)
            skipped = sum(i["skipped_lines"] for i in infos)
            raise RawFormatError(
                f"{path}: no rows left ({skipped:,} line(s) skipped as malformed); a day needs rows: "
                "fix or replace the file"
            )


def prepare_out(out: str) -> None:
    for sub in ("", "/counts", "/vocab", "/parsed"):
        g_pathmgr.mkdirs(out + sub)
        remove_stale_tmp(out + sub)


def check_sizes(files: dict[int, str], sources: dict[int, dict[str, Any]]) -> None:
    for d, src in sources.items():
        if src["bytes"] == 0:
            raise RawFormatError(f"{files[d]}: file is empty (0 rows); remove it or regenerate the day")
