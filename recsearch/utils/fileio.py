"""File helpers over iopath's PathManager: atomic writes, checksums, streamed .npy.

Nothing half-written ever carries a final name: every file is written under a
temporary name in the same directory and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import numpy as np
from iopath.common.file_io import NativePathHandler, g_pathmgr
from numpy.lib import format as npy_format

from recsearch.utils.faults import fault_point

_NPY_HEADER_BYTES = 128  # fixed, so the shape can be patched in after streaming


def _is_local(path: str) -> bool:
    handler = g_pathmgr._PathManager__get_path_handler(path)  # type: ignore[attr-defined]
    return isinstance(handler, NativePathHandler)


def tmp_name(path: str) -> str:
    head, _, tail = path.rpartition("/")
    return f"{head}/.tmp-{os.getpid()}-{tail}" if head else f".tmp-{os.getpid()}-{tail}"


def remove_stale_tmp(directory: str) -> list[str]:
    """Delete temporaries left in ``directory`` by processes that no longer run."""
    removed: list[str] = []
    if not g_pathmgr.isdir(directory):
        return removed
    for name in g_pathmgr.ls(directory):
        if not name.startswith(".tmp-"):
            continue
        pid = name.split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue
        g_pathmgr.rm(f"{directory.rstrip('/')}/{name}")
        removed.append(name)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def commit(tmp: str, path: str) -> None:
    """Rename a finished temporary file onto its final name (atomic when local)."""
    fault_point("before-commit")
    if _is_local(path):
        os.replace(g_pathmgr.get_local_path(tmp), g_pathmgr.get_local_path(path))
    else:
        if g_pathmgr.exists(path):
            g_pathmgr.rm(path)
        if not g_pathmgr.mv(tmp, path):
            raise OSError(f"could not move {tmp} to {path}")
    fault_point("committed")


@contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``path`` for writing; it appears only if the block completes."""
    tmp = tmp_name(path)
    try:
        with g_pathmgr.open(tmp, mode) as f:
            yield f
        commit(tmp, path)
    finally:
        if g_pathmgr.exists(tmp):
            g_pathmgr.rm(tmp)


def write_json(path: str, obj: Any) -> None:
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path: str) -> Any:
    """A JSON file; a truncated or damaged one is a ValueError naming the file."""
    with g_pathmgr.open(path, "r") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON (truncated or damaged?): {e}") from None


def check_out_dir(path: str, flag: str = "--out") -> None:
    """Create output directory ``path``; one-line errors when it is a file or not writable."""
    if g_pathmgr.exists(path) and not g_pathmgr.isdir(path):
        raise ValueError(f"{flag} {path} is an existing file; name a directory")
    try:
        g_pathmgr.mkdirs(path)
    except OSError as e:
        raise ValueError(f"{flag} {path}: cannot create the directory ({e.strerror or e})") from None
    local = g_pathmgr.get_local_path(path)
    if os.path.isdir(local) and not os.access(local, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path} is not writable; choose another directory")


def check_out_file(path: str, flag: str = "--out") -> None:
    """An output file's folder must exist (it is created) and be writable; the path not a folder."""
    if g_pathmgr.isdir(path):
        raise ValueError(f"{flag} {path} is a directory; name a file")
    parent = os.path.dirname(path) or "."
    check_out_dir(parent, flag=f"{flag} {path}: folder")


def save_npy(path: str, arr: np.ndarray) -> None:
    with atomic_open(path) as f:
        np.save(f, arr, allow_pickle=False)


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with g_pathmgr.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A .npy header of a fixed size (so a shape can be patched in, or rows written at offsets)."""
    d = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    body = repr(d).encode("latin1")
    prefix = b"\x93NUMPY\x01\x00"
    pad = _NPY_HEADER_BYTES - len(prefix) - 2 - len(body) - 1
    assert pad >= 0, "shape too long for the fixed .npy header"
    header_len = _NPY_HEADER_BYTES - len(prefix) - 2
    return prefix + header_len.to_bytes(2, "little") + body + b" " * pad + b"\n"


def iter_npy_rows(path: str, chunk_rows: int) -> Iterator[np.ndarray]:
    """Read a 2-D ``.npy`` in chunks of rows with plain reads (no memory map, whose
    touched pages would count toward resident memory for the whole file)."""
    with g_pathmgr.open(path, "rb") as f:
        version = npy_format.read_magic(f)
        read_header = (
            npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-ordered 2-D array, got shape {shape}")
        rows, width = shape
        for lo in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - lo)
            buf = f.read(n * width * dtype.itemsize)
            if len(buf) != n * width * dtype.itemsize:
                raise ValueError(f"{path} is truncated")
            yield np.frombuffer(buf, dtype=dtype).reshape(n, width)


class NpyStreamWriter:
    """Append rows to a 2-D ``.npy`` of unknown final length, then publish it.

    Example:
        >>> import tempfile
        >>> p = tempfile.mkdtemp() + "/x.npy"
        >>> with NpyStreamWriter(p, np.float32, 2) as w:
        ...     w.append(np.ones((3, 2), np.float32))
        >>> np.load(p).shape
        (3, 2)
    """

    def __init__(self, path: str, dtype: type | np.dtype, width: int) -> None:
        self.path, self.dtype, self.width = path, np.dtype(dtype), width
        self.rows = 0
        self._tmp = tmp_name(path)
        self._f: IO[bytes] = g_pathmgr.open(self._tmp, "wb")
        self._f.write(npy_header(self.dtype, (0, width)))

    def append(self, rows: np.ndarray) -> None:
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"expected rows of width {self.width}, got shape {rows.shape}")
        self._f.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self.rows += len(rows)

    def close(self) -> None:
        """Finish the file and rename it to its final name."""
        self._f.seek(0)
        self._f.write(npy_header(self.dtype, (self.rows, self.width)))
        self._f.close()
        commit(self._tmp, self.path)

    def abort(self) -> None:
        self._f.close()
        if g_pathmgr.exists(self._tmp):
            g_pathmgr.rm(self._tmp)

    def __enter__(self) -> NpyStreamWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
