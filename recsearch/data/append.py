"""``recsearch preprocess --append``: a new day, against an existing vocabulary.

The new day's values get the ids of the directory's saved vocabulary (unseen values the
rare id), so every existing day keeps its ids; no other day is read, and the manifest is
rewritten atomically at the end. Options that change output bytes come from the
directory; different ones given on the command line are refused.
"""

from __future__ import annotations

from typing import Any

from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import format_days
from recsearch.data.day_parse import (
    MIN_RANGE_BYTES,
    check_sizes,
    content_key,
    parse_ranges,
    plan_ranges,
    prepare_out,
    source_id,
    source_key,
    to_parse,
)
from recsearch.data.day_write import day_record, remove_intermediates, write_days
from recsearch.data.preprocess import PreprocessOptions, _manifest_day, find_day_files, load_vocab
from recsearch.data.shards import MANIFEST, verified_day_record, write_manifest
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import read_json


def append_days(
    input_dir: str,
    output_dir: str,
    days: list[int],
    workers: int = 2,
    threads: int = 0,
    max_rows_per_table: int | None = None,
    on_bad_line: str | None = None,
    min_range_bytes: int = MIN_RANGE_BYTES,
) -> dict[str, Any]:
    """Add ``days`` to an existing shard directory with its saved vocabulary: their values
    get the existing ids (unseen ones the rare id), no other day is read, and the manifest
    is rewritten atomically. Options not given are the directory's; given ones must match."""
    out = output_dir.rstrip("/")
    path = f"{out}/{MANIFEST}"
    if not g_pathmgr.exists(path):
        raise ValueError(f"{out} has no {MANIFEST}: --append adds days to a preprocessed directory")
    manifest = read_json(path)
    saved = manifest.get("options", {})
    given = {"max_rows_per_table": max_rows_per_table, "on_bad_line": on_bad_line}
    for key, value in given.items():
        if value is not None and key in saved and saved[key] != value:
            raise ValueError(
                f"--{key.replace('_', '-')} {value} differs from {out}'s {saved[key]}; "
                "appended days use the directory's options (drop the flag)"
            )
    options = PreprocessOptions(
        days=tuple(days),
        vocab_days=(),
        max_rows_per_table=int(saved.get("max_rows_per_table", max_rows_per_table or 5_000_000)),
        on_bad_line=str(saved.get("on_bad_line", on_bad_line or "error")),
        workers=workers,
        threads=threads,
        min_range_bytes=min_range_bytes,
    )
    if "vocab_key" not in manifest:
        raise ValueError(f"{path} predates --append (no vocab_key); re-run preprocessing of all days once")
    present = sorted(d for d in days if str(d) in manifest["days"])
    if present:
        raise ValueError(
            f"day(s) {format_days(present)} are already in {out}; --append adds new days "
            "(re-run the full preprocess command to redo existing ones)"
        )
    files = find_day_files(input_dir, days)
    prepare_out(out)
    sources = {d: source_id(p) for d, p in files.items()}
    check_sizes(files, sources)
    ranges = plan_ranges(files, sources, options)
    vocab_key = manifest["vocab_key"]
    day_keys = {d: content_key("day", source_key(sources[d], options), vocab_key) for d in days}
    complete = {d for d in days if verified_day_record(out, d, day_keys[d]) is not None}
    parse_ranges(to_parse(ranges, days, complete, {}, out), out, options, sources)
    vocabs = load_vocab(out)
    if [v.num_rows for v in vocabs] != manifest["num_embeddings"]:
        raise ValueError(f"{out}: the vocabulary files do not match {MANIFEST}; re-run preprocessing")
    write_days([d for d in days if d not in complete], ranges, out, vocabs, day_keys, options, sources)
    remove_intermediates(out)
    for d in days:
        manifest["days"][str(d)] = _manifest_day(day_record(out, d, day_keys[d]))
    manifest["days"] = {str(d): manifest["days"][str(d)] for d in sorted(map(int, manifest["days"]))}
    manifest["skipped_lines"] = sum(int(r["skipped_lines"]) for r in manifest["days"].values())
    manifest["options"] = {**saved, "days": format_days(sorted(map(int, manifest["days"])))}
    manifest.pop("format_version", None)
    fault_point("before-manifest")
    write_manifest(out, manifest)
    return manifest
