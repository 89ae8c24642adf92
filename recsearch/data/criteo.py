"""The raw Criteo click-log format and the per-day shard layout.

A raw day is one example per line, tab-separated: the label (0/1), 13 integer
features (may be empty or negative) and 26 categorical features (8-digit hex
strings, may be empty). Shards follow the layout TorchRec's
``InMemoryBinaryCriteoIterDataPipe`` reads: ``day_{d}_dense.npy`` (float32, N x 13),
``day_{d}_sparse.npy`` (int32, N x 26) and ``day_{d}_labels.npy`` (int32, N x 1).
"""

from __future__ import annotations

import re

import numpy as np

NUM_DENSE = 13
NUM_SPARSE = 26
NUM_COLUMNS = 1 + NUM_DENSE + NUM_SPARSE
DENSE_NAMES = [f"int_{i}" for i in range(NUM_DENSE)]
# TorchRec's DEFAULT_CAT_NAMES: batches from our loader and TorchRec's share keys.
SPARSE_NAMES = [f"cat_{i}" for i in range(NUM_SPARSE)]
HEX_DIGITS = 8

# Reserved ids at the head of every categorical table; values by descending
# frequency start at FIRST_VALUE_ID.
MISSING_ID = 0
OOV_ID = 1
FIRST_VALUE_ID = 2
# Sentinel for a missing categorical value before remapping (hex values are >= 0).
MISSING_VALUE = -1

DENSE_TRANSFORM = "log1p(max(x, 0)), missing -> 0"

_DAY_RE = re.compile(r"^day_(\d+)(\.gz)?$")


def dense_transform(x: np.ndarray) -> np.ndarray:
    """The transform from raw integer counts to shard values (train and serve).

    Example:
        >>> dense_transform(np.array([-3, 0, 1]))
        array([0.       , 0.       , 0.6931472], dtype=float32)
    """
    return np.log1p(np.maximum(x, 0).astype(np.float64)).astype(np.float32)


def shard_path(root: str, day: int, kind: str) -> str:
    """Path of one shard file; ``kind`` is ``dense``, ``sparse`` or ``labels``."""
    return f"{root.rstrip('/')}/day_{day}_{kind}.npy"


def parse_day_file_name(name: str) -> int | None:
    """The day number of a raw file name (``day_3`` or ``day_3.gz``), else None."""
    match = _DAY_RE.match(name)
    return int(match.group(1)) if match else None


def parse_days(spec: str) -> list[int]:
    """Parse a day list such as ``0-3,7`` into sorted unique day numbers.

    Example:
        >>> parse_days("0-2,5")
        [0, 1, 2, 5]
    """
    days: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        bounds = part.split("-")
        try:
            if len(bounds) == 1:
                days.add(int(bounds[0]))
            elif len(bounds) == 2:
                lo, hi = int(bounds[0]), int(bounds[1])
                if lo > hi:
                    raise ValueError
                days.update(range(lo, hi + 1))
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"bad day list {spec!r}: use numbers and ranges such as '0-3,7'") from None
    if not days or min(days) < 0:
        raise ValueError(f"bad day list {spec!r}: need at least one day number >= 0")
    return sorted(days)


def parse_day_range_or_count(spec: str) -> list[int]:
    """Days to create (``synth``, ``quickstart``): a day list such as ``0-3``; a bare number N,
    the older spelling, means N days ``0..N-1``.

    Example:
        >>> parse_day_range_or_count("2-3"), parse_day_range_or_count("3")
        ([2, 3], [0, 1, 2])
    """
    text = str(spec).strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError(f"--days {spec}: need at least one day")
        return list(range(int(text)))
    return parse_days(text)


def format_days(days: list[int]) -> str:
    """Inverse of :func:`parse_days` (compact ranges)."""
    out: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + 1:
            j += 1
        out.append(str(days[i]) if i == j else f"{days[i]}-{days[j]}")
        i = j + 1
    return ",".join(out)


def hex_encode(values: np.ndarray) -> np.ndarray:
    """uint32 values -> (N, 8) uint8 array of lowercase hex ASCII digits."""
    v = values.astype(np.uint32)
    shifts = np.arange(HEX_DIGITS - 1, -1, -1, dtype=np.uint32) * 4
    nibbles = (v[:, None] >> shifts[None, :]) & 0xF
    return _HEX_CHARS[nibbles]


_HEX_CHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
HEX_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    HEX_LUT[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    HEX_LUT[_c] = 10 + _i
