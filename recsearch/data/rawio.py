"""Streaming parser for raw Criteo day files (plain or gzip).

A day file is read in fixed-size byte blocks cut at line ends, so memory stays
bounded whatever the day size. Each block goes through a fast path (Arrow's
multi-threaded CSV reader plus vectorized hex decoding); a block that the fast
path rejects is re-read line by line in Python, which names the first bad line
(``--on-bad-line error``) or drops and counts bad lines (``skip``).
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import (
    HEX_DIGITS,
    HEX_LUT,
    MISSING_VALUE,
    NUM_COLUMNS,
    NUM_DENSE,
    NUM_SPARSE,
    dense_transform,
)

DEFAULT_BLOCK_BYTES = 8 << 20
_COLUMN_NAMES = ["label"] + [f"i{i}" for i in range(NUM_DENSE)] + [f"c{i}" for i in range(NUM_SPARSE)]
_INT64_MAX = 2**63 - 1
_INT_RE = re.compile(rb"-?[0-9]+")


class RawFormatError(ValueError):
    """A raw day file that cannot be read; the message names file and line."""

    def __init__(self, message: str, line: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.line, self.reason = line, reason

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str]]:  # raised in worker processes
        return (RawFormatError, (str(self), self.line, self.reason))


@dataclass
class ParsedBlock:
    """One block of parsed rows.

    ``dense`` holds the transformed dense features (float32, N x 13); categorical
    values are field-major: ``values`` (uint32, 26 x N; 0 where empty) and
    ``missing`` (bool, 26 x N).
    """

    labels: np.ndarray
    dense: np.ndarray
    values: np.ndarray
    missing: np.ndarray
    skipped: int
    raw_pos: int = 0  # bytes of the (possibly compressed) file consumed so far

    def cats(self) -> np.ndarray:
        """Categorical values as int64, N x 26, ``MISSING_VALUE`` where empty."""
        return np.where(self.missing, MISSING_VALUE, self.values.astype(np.int64)).T


def line_start_at_or_after(path: str, pos: int) -> int:
    """The offset of the first line that starts at or after byte ``pos`` of a plain file."""
    if pos <= 0:
        return 0
    with g_pathmgr.open(path, "rb") as f:
        f.seek(pos - 1)
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                return f.tell()
            nl = chunk.find(b"\n")
            if nl >= 0:
                return f.tell() - len(chunk) + nl + 1


def split_lines(path: str, size: int, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` byte ranges ``[start, end)`` of a plain file, each a run of whole lines."""
    cuts = sorted({0, size, *(line_start_at_or_after(path, k * size // parts) for k in range(1, parts))})
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def count_lines_before(path: str, pos: int) -> int:
    """Newlines in the first ``pos`` bytes of a plain file (for error messages of a range)."""
    n = 0
    with g_pathmgr.open(path, "rb") as f:
        while pos > 0:
            chunk = f.read(min(pos, 8 << 20))
            if not chunk:
                break
            n += chunk.count(b"\n")
            pos -= len(chunk)
    return n


def iter_blocks(
    path: str, block_bytes: int = DEFAULT_BLOCK_BYTES, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(block, first_line_number, raw_bytes_read)``; blocks end with a newline.

    ``start``/``end`` (plain files only) read one byte range of whole lines; line numbers
    then count from the range's first line (1).
    Raises RawFormatError for an empty file or a truncated/corrupt gzip stream.
    """
    with g_pathmgr.open(path, "rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw  # type: ignore[assignment]
        if start or end is not None:
            if path.endswith(".gz"):
                raise ValueError(f"{path}: a gzip stream cannot be read from a byte range")
            raw.seek(start)
        left = None if end is None else end - start
        carry = b""
        line_no = 1
        seen_any = False
        while True:
            try:
                chunk = stream.read(block_bytes if left is None else min(block_bytes, left))
                if left is not None:
                    left -= len(chunk)
            except (EOFError, gzip.BadGzipFile, zlib.error) as e:
                raise RawFormatError(
                    f"{path}: gzip stream is truncated or corrupt after line {line_no - 1} "
                    f"({e}); re-copy or re-download the file"
                ) from None
            if not chunk:
                break
            seen_any = True
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            block, carry = data[: cut + 1], data[cut + 1 :]
            yield block, line_no, raw.tell()
            line_no += block.count(b"\n")
        if not seen_any:
            raise RawFormatError(f"{path}: file is empty (0 rows); remove it or regenerate the day")
        if carry:
            yield carry + b"\n", line_no, raw.tell()


_READ_OPTS = dict(column_names=_COLUMN_NAMES)
_PARSE_OPTS = pacsv.ParseOptions(
    delimiter="\t", quote_char=False, double_quote=False, escape_char=False, ignore_empty_lines=False
)
_CONVERT_OPTS = pacsv.ConvertOptions(
    column_types={
        "label": pa.int64(),
        **{f"i{i}": pa.int64() for i in range(NUM_DENSE)},
        **{f"c{i}": pa.string() for i in range(NUM_SPARSE)},
    },
    null_values=[""],
    strings_can_be_null=True,
)


def _pair_lut() -> np.ndarray:
    """Two ASCII hex digits read as one native uint16 -> their byte value (256: invalid)."""
    codes = np.arange(1 << 16, dtype=np.uint16).view(np.uint8).reshape(-1, 2)  # memory order
    hi, lo = HEX_LUT[codes[:, 0]].astype(np.uint16), HEX_LUT[codes[:, 1]].astype(np.uint16)
    return np.where((hi < 16) & (lo < 16), hi * 16 + lo, 256).astype(np.uint16)


_PAIR_LUT = _pair_lut()


class _Reject(Exception):
    """The fast path cannot vouch for this block."""


def _decode_hex_column(col: pa.ChunkedArray, values: np.ndarray, missing: np.ndarray) -> None:
    """Decode an Arrow string column of 8-digit hex (or null) into ``values``/``missing``."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(arr)
    if n == 0:
        return
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    np.equal(offsets[1:], offsets[:-1], out=missing)
    num_present = n - int(missing.sum())
    if num_present * HEX_DIGITS != offsets[-1] - offsets[0]:
        raise _Reject  # some value is not exactly 8 characters long
    values[:] = 0
    if num_present == 0:
        return
    # all present values are 8 bytes, so they lie back to back in the data buffer
    pairs = np.frombuffer(bufs[2], dtype=np.uint16, count=num_present * 4, offset=int(offsets[0]))
    decoded = _PAIR_LUT[pairs]  # each pair of hex digits -> its byte value, or 256 if invalid
    if decoded.max() > 255:
        raise _Reject
    present = decoded.astype(np.uint8).view(">u4")  # 4 bytes, most significant first
    if num_present == n:
        values[:] = present
    else:
        values[~missing] = present


def _fast_parse(block: bytes) -> ParsedBlock:
    n_lines = block.count(b"\n")
    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(**_READ_OPTS, block_size=max(1 << 20, len(block) // 8 + 1)),
            parse_options=_PARSE_OPTS,
            convert_options=_CONVERT_OPTS,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _Reject from None
    if table.num_rows != n_lines:
        raise _Reject
    labels_col = table.column("label")
    if labels_col.null_count:
        raise _Reject
    labels = labels_col.to_numpy()
    if not np.all((labels == 0) | (labels == 1)):
        raise _Reject
    values = np.empty((NUM_SPARSE, n_lines), dtype=np.uint32)
    missing = np.empty((NUM_SPARSE, n_lines), dtype=bool)
    for i in range(NUM_SPARSE):
        _decode_hex_column(table.column(f"c{i}"), values[i], missing[i])
    ints = np.empty((n_lines, NUM_DENSE), dtype=np.int64)
    for i in range(NUM_DENSE):
        ints[:, i] = table.column(f"i{i}").fill_null(0).to_numpy()
    return ParsedBlock(
        labels=labels.astype(np.int32), dense=dense_transform(ints), values=values, missing=missing, skipped=0
    )


def check_line(fields: list[bytes]) -> str | None:
    """Why a split raw line is malformed, or None when it is well-formed."""
    if len(fields) != NUM_COLUMNS:
        return f"expected {NUM_COLUMNS} tab-separated columns, found {len(fields)}"
    if fields[0] not in (b"0", b"1"):
        return f"label must be 0 or 1, found {fields[0][:20]!r}"
    for i in range(NUM_DENSE):
        f = fields[1 + i]
        if f:
            if not _INT_RE.fullmatch(f):
                return f"integer feature {i} is not an integer: {f[:20]!r}"
            if not -_INT64_MAX <= int(f) <= _INT64_MAX:
                return f"integer feature {i} is out of the 64-bit range: {f[:20]!r}"
    for i in range(NUM_SPARSE):
        f = fields[1 + NUM_DENSE + i]
        if f and (len(f) != HEX_DIGITS or (HEX_LUT[np.frombuffer(f, np.uint8)] == 255).any()):
            return f"categorical feature {i} is not an {HEX_DIGITS}-digit hex string: {f[:20]!r}"
    return None


def _slow_parse(block: bytes, path: str, first_line: int, skip_bad: bool) -> ParsedBlock:
    good: list[bytes] = []
    skipped = 0
    for k, line in enumerate(block.split(b"\n")[:-1]):
        line = line[:-1] if line.endswith(b"\r") else line
        reason = check_line(line.split(b"\t"))
        if reason is None:
            good.append(line)
            continue
        if not skip_bad:
            reason += " (pass --on-bad-line skip to drop and count such lines)"
            raise RawFormatError(
                f"{path}, line {first_line + k}: {reason}", line=first_line + k, reason=reason
            )
        skipped += 1
    if good:
        try:
            parsed = _fast_parse(b"\n".join(good) + b"\n")
        except _Reject:
            raise AssertionError(f"{path}: lines near {first_line} pass validation but not parsing") from None
    else:
        parsed = ParsedBlock(
            labels=np.zeros(0, np.int32),
            dense=np.zeros((0, NUM_DENSE), np.float32),
            values=np.zeros((NUM_SPARSE, 0), np.uint32),
            missing=np.zeros((NUM_SPARSE, 0), bool),
            skipped=0,
        )
    parsed.skipped = skipped
    return parsed


def parse_block(block: bytes, path: str, first_line: int, skip_bad: bool) -> ParsedBlock:
    """Parse one newline-terminated block of raw lines."""
    try:
        return _fast_parse(block)
    except _Reject:
        return _slow_parse(block, path, first_line, skip_bad)


T = TypeVar("T")


def iter_parsed(
    path: str,
    skip_bad: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    threads: int = 2,
    then: Callable[[ParsedBlock], T] | None = None,
    start: int = 0,
    end: int | None = None,
) -> Iterator[T]:
    """Parse a raw day file (or the byte range ``[start, end)`` of whole lines) block by block,
    in order.

    Up to ``threads`` blocks are parsed concurrently (Arrow and NumPy release the
    GIL), each followed by ``then`` (per-block work of the caller, default: none)
    in the same thread; at most ``threads + 1`` blocks are in memory at once. A bad
    line's number counts from the file's start, also in a range.
    """
    try:
        yield from _iter_parsed(path, skip_bad, block_bytes, threads, then, start, end)
    except RawFormatError as e:
        if not start or e.line is None:
            raise
        line = count_lines_before(path, start) + e.line
        raise RawFormatError(f"{path}, line {line}: {e.reason}", line=line, reason=e.reason) from None


def _iter_parsed(
    path: str,
    skip_bad: bool,
    block_bytes: int,
    threads: int,
    then: Callable[[ParsedBlock], T] | None,
    start: int,
    end: int | None,
) -> Iterator[T]:

    def parse(item: tuple[bytes, int, int]) -> T:
        block, first_line, raw_pos = item
        parsed = parse_block(block, path, first_line, skip_bad)
        parsed.raw_pos = raw_pos
        return then(parsed) if then is not None else parsed  # type: ignore[return-value]

    blocks = iter_blocks(path, block_bytes, start, end)
    if threads <= 1:
        yield from map(parse, blocks)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[T]] = deque()
        try:
            for item in blocks:
                pending.append(pool.submit(parse, item))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
