"""The per-day shard directory: manifest, day records, verification.

Every producer (Criteo preprocessing, tabular conversion) writes the same
layout, so every consumer (loader, trainer, searches) reads one format.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import shard_path
from recsearch.utils.fileio import NpyStreamWriter, file_sha256, read_json, write_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VERIFIED = ".verified.json"  # files already checked: name -> [size, mtime_ns, sha256]
_verified_here: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) checked in this process


def jagged_kind(name: str, part: str) -> str:
    """Shard kind of a multi-valued feature's ``values`` or ``lengths`` file."""
    return f"mv_{name}_{part}"


def day_record_path(root: str, day: int) -> str:
    return f"{root.rstrip('/')}/day_{day}.done.json"


class DayShardWriter:
    """Stream one day's dense/sparse/labels arrays into shard files.

    Files get their final names only in :meth:`finish`, which then writes the
    day's completion record (row count and checksums) last.
    """

    def __init__(
        self, root: str, day: int, num_dense: int, num_sparse: int, jagged: list[str] | None = None
    ) -> None:
        self.root, self.day = root, day
        self._writers = {
            "dense": NpyStreamWriter(shard_path(root, day, "dense"), np.float32, num_dense),
            "sparse": NpyStreamWriter(shard_path(root, day, "sparse"), np.int32, num_sparse),
            "labels": NpyStreamWriter(shard_path(root, day, "labels"), np.int32, 1),
        }
        for name in jagged or []:
            for part in ("values", "lengths"):
                kind = jagged_kind(name, part)
                self._writers[kind] = NpyStreamWriter(shard_path(root, day, kind), np.int32, 1)

    def append(
        self,
        dense: np.ndarray,
        sparse: np.ndarray,
        labels: np.ndarray,
        jagged: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Append rows; ``jagged`` maps a multi-valued feature to (ids, per-row lengths)."""
        self._writers["dense"].append(dense)
        self._writers["sparse"].append(sparse)
        self._writers["labels"].append(labels.reshape(-1, 1))
        for name, (values, lengths) in (jagged or {}).items():
            self._writers[jagged_kind(name, "values")].append(values.reshape(-1, 1))
            self._writers[jagged_kind(name, "lengths")].append(lengths.reshape(-1, 1))

    @property
    def rows(self) -> int:
        return self._writers["labels"].rows

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        for w in self._writers.values():
            w.close()
        return write_day_record(self.root, self.day, list(self._writers), record)

    def abort(self) -> None:
        for w in self._writers.values():
            w.abort()


def write_day_record(
    root: str, day: int, kinds: list[str], record: dict[str, Any], threads: int = 1
) -> dict[str, Any]:
    """Mark a day complete: its files' row count and checksums (``threads`` files hashed at a
    time), written last."""
    paths = [shard_path(root, day, kind) for kind in kinds]
    with ThreadPoolExecutor(max(1, min(len(paths), threads))) as pool:  # hashlib releases the GIL
        digests = list(pool.map(file_sha256, paths))
    files = {path.rsplit("/", 1)[-1]: digest for path, digest in zip(paths, digests, strict=True)}
    labels = np.load(g_pathmgr.get_local_path(shard_path(root, day, "labels")), mmap_mode="r")
    record = {**record, "day": day, "rows": len(labels), "files": files}
    write_json(day_record_path(root, day), record)
    return record


def verified_day_record(root: str, day: int, key: str, verify_files: bool = True) -> dict[str, Any] | None:
    """The day's completion record if it matches ``key`` and (``verify_files``) its files verify."""
    path = day_record_path(root, day)
    if not g_pathmgr.exists(path):
        return None
    try:
        record = read_json(path)
    except ValueError:
        return None
    if record.get("key") != key:
        return None
    for name, digest in record.get("files", {}).items() if verify_files else ():
        full = f"{root.rstrip('/')}/{name}"
        if not g_pathmgr.exists(full) or file_sha256(full) != digest:
            return None
    return record


@dataclass
class ShardInfo:
    """What a consumer needs from a shard directory's manifest."""

    root: str
    days: dict[int, int]  # day -> rows
    dense_names: list[str]
    sparse_names: list[str]
    jagged_names: list[str]
    num_embeddings: list[int]
    manifest: dict[str, Any]

    @staticmethod
    def load(root: str) -> ShardInfo:
        path = f"{root.rstrip('/')}/{MANIFEST}"
        if not g_pathmgr.exists(path):
            raise ValueError(
                f"{root} has no {MANIFEST}: run `recsearch preprocess` (or `recsearch convert`) "
                "into it first, or let an interrupted run finish"
            )
        m = read_json(path)
        if not isinstance(m, dict) or m.get("format_version") != FORMAT_VERSION:
            version = m.get("format_version") if isinstance(m, dict) else None
            raise ValueError(
                f"{path}: shard format version {version} is not supported "
                f"(this recsearch reads version {FORMAT_VERSION}); re-run preprocessing"
            )
        try:
            info = ShardInfo(
                root=root,
                days={int(d): int(r["rows"]) for d, r in m["days"].items()},
                dense_names=list(m["dense_names"]),
                sparse_names=list(m["sparse_names"]),
                jagged_names=list(m.get("multi_valued_names", [])),
                num_embeddings=[int(n) for n in m["num_embeddings"]],
                manifest=m,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError(f"{path} is damaged (keys missing or malformed); re-run preprocessing") from None
        if len(info.num_embeddings) != len(info.sparse_names) + len(info.jagged_names):
            raise ValueError(f"{path} is damaged: num_embeddings does not match the sparse features")
        return info

    def check_days(self, days: list[int]) -> None:
        missing = [d for d in days if d not in self.days]
        if missing:
            raise ValueError(
                f"{self.root}: day(s) {missing} not in the manifest; available days: {sorted(self.days)}"
            )

    def paths(self, day: int, kind: str) -> str:
        return shard_path(self.root, day, kind)

    def verify_day(self, day: int) -> None:
        """Check the day's files against the checksums in the manifest, each file once (a later
        process skips a file whose size and modification time are those it was verified at)."""
        files = self.manifest["days"][str(day)].get("files") or {}
        cache: dict[str, Any] | None = None
        for name, digest in files.items():
            path = f"{self.root.rstrip('/')}/{name}"
            local = g_pathmgr.get_local_path(path)
            try:
                st = os.stat(local)
            except FileNotFoundError:
                raise ValueError(f"{path} is missing; re-run preprocessing into {self.root}") from None
            key = (os.path.realpath(local), st.st_size, st.st_mtime_ns)
            if key in _verified_here:
                continue
            if cache is None:
                cache = _read_verified(self.root)
            if cache.get(name) != [st.st_size, st.st_mtime_ns, digest]:
                if file_sha256(path) != digest:
                    raise ValueError(
                        f"{path} does not match its checksum in {self.root}/{MANIFEST}: it was damaged or "
                        "changed after preprocessing; re-run the same preprocess command (it redoes "
                        "damaged days)"
                    )
                cache[name] = [st.st_size, st.st_mtime_ns, digest]
                _write_verified(self.root, cache)
            _verified_here.add(key)


def _read_verified(root: str) -> dict[str, Any]:
    try:
        cache = read_json(f"{root.rstrip('/')}/{VERIFIED}")
    except (FileNotFoundError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _write_verified(root: str, cache: dict[str, Any]) -> None:
    try:  # read-only shard storage: every process verifies for itself
        write_json(f"{root.rstrip('/')}/{VERIFIED}", cache)
    except OSError:
        pass


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    write_json(f"{root.rstrip('/')}/{MANIFEST}", {"format_version": FORMAT_VERSION, **manifest})
