"""Pass 2 of ``recsearch preprocess``: every range's rows written into its day's shards.

The day's three shard files are preallocated under temporary names; workers remap their
ranges' raw values to ids (the vocabulary's id maps, built once before the workers fork)
and write rows straight to their offsets, and copy the parsed dense features and labels
into place in the kernel. When a day's last range is written, its files get their final
names and the day its checksummed completion record. A kill anywhere leaves temporaries
(removed on the next run, which redoes the day) or a complete, verified day.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import NUM_DENSE, NUM_SPARSE, shard_path
from recsearch.data.day_parse import Range, save_day_counts
from recsearch.data.shards import verified_day_record, write_day_record
from recsearch.data.vocab import FieldVocab, IdMap
from recsearch.data.workers import report, run_parallel
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import commit, iter_npy_rows, npy_header, read_json, tmp_name

if TYPE_CHECKING:
    from recsearch.data.preprocess import PreprocessOptions

KINDS = {"dense": (np.float32, NUM_DENSE), "sparse": (np.int32, NUM_SPARSE), "labels": (np.int32, 1)}
_maps: list[IdMap] = []  # the vocabulary's id maps: built once, before the workers fork
_REMAP_ROWS = 1 << 18


def _write_range(r: Range, out: str, offset: int, files: dict[str, str], raw_bytes: int) -> None:
    """Pass 2: a range's rows -> its slice of the day's preallocated shard files."""
    rows = read_json(f"{out}/parsed/{r.stem}.json")["rows"]
    with open(files["sparse"], "r+b") as sparse:
        at = offset
        chunks = zip(
            iter_npy_rows(r.parsed(out, "values"), _REMAP_ROWS),
            iter_npy_rows(r.parsed(out, "missing"), _REMAP_ROWS),
            strict=True,
        )
        for values, missing in chunks:
            ids = np.empty(values.shape, np.int32)
            mbits = missing[:, 0]
            cols = np.ascontiguousarray(values.T)  # (26, rows): a field per row
            for i, m in enumerate(_maps):
                ids[:, i] = m.lookup(cols[i], (mbits >> np.uint32(i)) & np.uint32(1) == 1)
            os.pwrite(sparse.fileno(), ids.data, _row_offset("sparse", at))
            at += len(ids)
            report(raw_bytes * len(ids) // max(rows, 1), len(ids))
    for kind in ("dense", "labels"):  # the parsed rows, copied into place by the kernel
        src_path = g_pathmgr.get_local_path(r.parsed(out, kind))
        with open(src_path, "rb") as src, open(files[kind], "r+b") as dst:
            header = _row_offset(kind, 0)
            left, src_at, dst_at = os.fstat(src.fileno()).st_size - header, header, _row_offset(kind, offset)
            while left > 0:
                n = os.copy_file_range(src.fileno(), dst.fileno(), left, src_at, dst_at)
                if n == 0:
                    raise OSError(f"{src_path}: short copy into {files[kind]}")
                left, src_at, dst_at = left - n, src_at + n, dst_at + n


def _row_offset(kind: str, row: int) -> int:
    dtype, width = KINDS[kind]
    return len(npy_header(np.dtype(dtype), (0, width))) + row * width * np.dtype(dtype).itemsize


def write_days(
    days: list[int],
    ranges: dict[int, list[Range]],
    out: str,
    vocabs: list[FieldVocab],
    day_keys: dict[int, str],
    options: PreprocessOptions,
    sources: dict[int, dict[str, Any]],
    save_counts: dict[int, str] | None = None,
) -> None:
    """Pass 2 for ``days``: preallocate each day's shard files, fill them from every range in
    parallel, then publish each day as soon as its last range is written. The same pool
    saves the merged value counts of the vocabulary days in ``save_counts`` (day -> key)."""
    global _maps
    save_counts = save_counts or {}
    if not days and not save_counts:
        return
    _maps = [IdMap(v) for v in vocabs]  # before the workers fork: they share these pages
    jobs: list[tuple[Any, ...]] = [("counts", out, d, key, ranges[d]) for d, key in save_counts.items()]
    owners: list[int | None] = [None] * len(jobs)
    files, left = {}, {}
    for d in days:
        infos = [read_json(f"{out}/parsed/{r.stem}.json") for r in ranges[d]]
        total = sum(i["rows"] for i in infos)
        files[d] = {kind: _preallocate(shard_path(out, d, kind), kind, total) for kind in KINDS}
        offset = 0
        for r, info in zip(ranges[d], infos, strict=True):
            jobs.append(("write", r, out, offset, files[d], (r.end or sources[d]["bytes"]) - r.start))
            owners.append(d)
            offset += info["rows"]
        left[d] = len(ranges[d])

    def finished(i: int) -> None:
        d = owners[i]
        if d is None:
            return
        left[d] -= 1
        if left[d] == 0:
            _publish(out, d, ranges[d], files[d], day_keys[d], sources[d]["file"], options.workers)

    try:
        total_bytes = sum(job[-1] for job in jobs if job[0] == "write")
        workers, threads = options.workers, options.threads_per_worker
        run_parallel(_pass2_job, jobs, total_bytes, workers, threads, "write shards", finished)
    finally:
        _maps = []


def _pass2_job(what: str, *args: Any) -> None:
    if what == "write":
        _write_range(*args)
    else:
        save_day_counts(*args)


def _preallocate(path: str, kind: str, rows: int) -> str:
    """A temporary .npy of ``rows`` rows (zeros) that workers fill at their offsets."""
    dtype, width = KINDS[kind]
    tmp = g_pathmgr.get_local_path(tmp_name(path))
    with open(tmp, "wb") as f:
        f.write(npy_header(np.dtype(dtype), (rows, width)))
        f.truncate(_row_offset(kind, rows))
    return tmp


def _publish(
    out: str, day: int, ranges: list[Range], files: dict[str, str], key: str, source: str, threads: int
) -> None:
    """Give a written day's files their final names, then its completion record; then drop
    its intermediates (a kill anywhere here: the rerun redoes or verifies the day)."""
    for kind, tmp in files.items():
        commit(tmp, shard_path(out, day, kind))
    fault_point("shards-committed")
    skipped = sum(read_json(f"{out}/parsed/{r.stem}.json")["skipped_lines"] for r in ranges)
    record = {"key": key, "source": source, "skipped_lines": skipped}
    write_day_record(out, day, list(KINDS), record, threads=threads)
    fault_point("day-record-written")
    for r in ranges:
        for kind in ("dense", "labels", "values", "missing"):
            if g_pathmgr.exists(r.parsed(out, kind)):
                g_pathmgr.rm(r.parsed(out, kind))


def day_record(out: str, day: int, key: str) -> dict[str, Any]:
    record = verified_day_record(out, day, key, verify_files=False)
    assert record is not None, f"day {day} finished without a completion record"
    return record


def remove_intermediates(out: str) -> None:
    """Drop pass-1 files (every day is published by now)."""
    for name in g_pathmgr.ls(f"{out}/parsed"):
        g_pathmgr.rm(f"{out}/parsed/{name}")
