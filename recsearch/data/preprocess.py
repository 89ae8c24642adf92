"""``recsearch preprocess``: raw Criteo days -> per-day binary shards, on all cores.

Each plain day file is cut into byte ranges of whole lines so that one day uses every
worker; a ``.gz`` day is one stream (decompression cannot start mid-stream), parsed in
``workers`` threads of one process. Two passes:

1. parse each range once into binary intermediates and count the categorical values
   of the vocabulary days (``day_parse``);
2. rank values into frequency-sorted vocabularies (``vocab/``), then every worker
   remaps its ranges' values to ids and writes its rows straight into the day's
   preallocated shard files; each day ends with a checksummed record (``day_write``).

The shards are byte-identical whatever the number of workers. Every step is
idempotent: a rerun after a kill at any point verifies and skips completed days and
redoes the rest. ``recsearch.data.append`` adds days with the saved vocabulary.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import (
    DENSE_NAMES,
    DENSE_TRANSFORM,
    FIRST_VALUE_ID,
    MISSING_ID,
    MISSING_VALUE,
    NUM_SPARSE,
    OOV_ID,
    SPARSE_NAMES,
    format_days,
    parse_day_file_name,
)
from recsearch.data.day_parse import (
    MIN_RANGE_BYTES,
    add_count_table,
    check_sizes,
    content_key,
    count_tables,
    day_counts_done,
    parse_ranges,
    plan_ranges,
    prepare_out,
    source_id,
    source_key,
    to_parse,
)
from recsearch.data.day_write import day_record, remove_intermediates, write_days
from recsearch.data.rawio import DEFAULT_BLOCK_BYTES
from recsearch.data.shards import verified_day_record, write_manifest
from recsearch.data.vocab import FieldCounter, FieldVocab
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import check_out_dir, save_npy


@dataclass(frozen=True)
class PreprocessOptions:
    """Options of one preprocessing run (``days`` to ``on_bad_line`` determine the output bytes;
    ``workers``, ``threads``, ``block_bytes`` and ``min_range_bytes`` only the speed)."""

    days: tuple[int, ...]
    vocab_days: tuple[int, ...]
    max_rows_per_table: int = 5_000_000
    on_bad_line: str = "error"
    workers: int = 2
    threads: int = 0  # per worker; 0: cores / workers
    block_bytes: int = DEFAULT_BLOCK_BYTES
    min_range_bytes: int = MIN_RANGE_BYTES

    def __post_init__(self) -> None:
        if self.on_bad_line not in ("error", "skip"):
            raise ValueError(f"--on-bad-line must be 'error' or 'skip', got {self.on_bad_line!r}")
        if self.max_rows_per_table < FIRST_VALUE_ID + 1:
            raise ValueError(f"--max-rows-per-table must be >= {FIRST_VALUE_ID + 1}")
        if self.workers < 1:
            raise ValueError("--workers must be >= 1")
        if self.threads < 0:
            raise ValueError("--threads must be >= 0")
        if self.min_range_bytes < 1:
            raise ValueError("--min-range-bytes must be >= 1")
        extra = sorted(set(self.vocab_days) - set(self.days))
        if extra:
            raise ValueError(f"--vocab-days {extra} are not among --days {format_days(list(self.days))}")

    @property
    def threads_per_worker(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)


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
        FieldVocab(values=load_vocab_file(out, i, "values"), counts=load_vocab_file(out, i, "counts"))
        for i in range(NUM_SPARSE)
    ]


def load_vocab_file(out: str, field: int, what: str) -> np.ndarray:
    """One field's ``values`` (raw values in id order: ``values[i]`` has id ``FIRST_VALUE_ID + i``)
    or ``counts`` (per id) from a shard directory."""
    path = _vocab_path(out, field, what)
    try:
        return np.load(g_pathmgr.get_local_path(path), allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{out}: vocabulary file {path} is missing; re-run preprocessing") from None


def build_vocab(tables: list[str], options: PreprocessOptions) -> tuple[list[FieldVocab], list[int]]:
    """Frequency-ranked vocabularies over saved count tables, and each field's distinct
    non-missing values."""
    counters = [FieldCounter() for _ in range(NUM_SPARSE)]
    for path in tables:
        add_count_table(counters, np.load(g_pathmgr.get_local_path(path)))
    results = [c.result() for c in counters]
    vocabs = [FieldVocab.build(keys, counts, options.max_rows_per_table) for keys, counts in results]
    distinct = [int((keys != MISSING_VALUE).sum()) for keys, _ in results]
    return vocabs, distinct


# ---------------------------------------------------------------- driver
def preprocess(input_dir: str, output_dir: str, options: PreprocessOptions) -> dict[str, Any]:
    """Convert raw days into shards under ``output_dir``; returns the manifest."""
    files = find_day_files(input_dir, options.days)
    check_out_dir(output_dir)
    out = output_dir.rstrip("/")
    prepare_out(out)
    sources = {d: source_id(p) for d, p in files.items()}  # one stat per file
    check_sizes(files, sources)
    ranges = plan_ranges(files, sources, options)

    # Pass 1: parse each raw day once into binary intermediates; count the vocabulary days.
    vocab_key = content_key(
        [source_key(sources[d], options) for d in options.vocab_days], options.max_rows_per_table
    )
    day_keys = {d: content_key("day", source_key(sources[d], options), vocab_key) for d in options.days}
    complete = {d for d in options.days if verified_day_record(out, d, day_keys[d]) is not None}
    if complete:
        print(f"days {format_days(sorted(complete))}: already complete and verified, skipped")
    count_keys = {d: source_key(sources[d], options) for d in options.vocab_days}
    parse_ranges(to_parse(ranges, list(options.days), complete, count_keys, out), out, options, sources)
    tables = [t for d, key in count_keys.items() for t in count_tables(out, d, key, ranges[d])]
    vocabs, distinct = build_vocab(tables, options)
    unsaved = {d: key for d, key in count_keys.items() if not day_counts_done(out, d, key)}
    save_vocab(out, vocabs)

    # Pass 2: remap every incomplete day's values to ids and publish its shards.
    todo = [d for d in options.days if d not in complete]
    write_days(todo, ranges, out, vocabs, day_keys, options, sources, save_counts=unsaved)
    remove_intermediates(out)
    records = {d: day_record(out, d, day_keys[d]) for d in options.days}
    manifest = {
        "dataset": "criteo",
        "dense_names": DENSE_NAMES,
        "sparse_names": SPARSE_NAMES,
        "dense_transform": DENSE_TRANSFORM,
        "reserved_ids": {"missing": MISSING_ID, "rare_or_unseen": OOV_ID, "first_value": FIRST_VALUE_ID},
        "num_embeddings": [v.num_rows for v in vocabs],
        "distinct_values": distinct,
        "vocab_key": vocab_key,
        "vocab_files": {
            SPARSE_NAMES[i]: {
                "values": f"vocab/{SPARSE_NAMES[i]}_values.npy",
                "counts": f"vocab/{SPARSE_NAMES[i]}_counts.npy",
            }
            for i in range(NUM_SPARSE)
        },
        "days": {str(d): _manifest_day(r) for d, r in records.items()},
        "skipped_lines": sum(int(r["skipped_lines"]) for r in records.values()),
        "options": _manifest_options(options),
    }
    fault_point("before-manifest")
    write_manifest(out, manifest)
    return manifest


def _manifest_day(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("rows", "skipped_lines", "source", "files")}


def _manifest_options(options: PreprocessOptions) -> dict[str, Any]:
    """The options that determine the output bytes (not the speed settings)."""
    speed = ("workers", "threads", "block_bytes", "min_range_bytes")
    return {
        **{k: v for k, v in asdict(options).items() if k not in speed},
        "days": format_days(list(options.days)),
        "vocab_days": format_days(list(options.vocab_days)),
    }
