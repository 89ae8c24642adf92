"""Per-field frequency counts, frequency-ranked vocabularies and id remapping.

Ids of one field: ``MISSING_ID`` (0) for an empty value, ``OOV_ID`` (1) for a value
that is rare (beyond the table cap) or unseen in the vocabulary days, then every
kept value by descending frequency (ties by ascending value) from ``FIRST_VALUE_ID``.
So an id is a frequency rank, which the embedding-dimension searches use to block
features by frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsearch.data.criteo import FIRST_VALUE_ID, MISSING_ID, MISSING_VALUE, OOV_ID


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (sorted) and their counts, by hashing (O(n))."""
    if len(values) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    vc = pc.value_counts(pa.array(values))
    keys = vc.field("values").to_numpy()
    counts = vc.field("counts").to_numpy()
    order = np.argsort(keys, kind="stable")
    return keys[order].astype(np.int64), counts[order].astype(np.int64)


def merge_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum several (keys, counts) tables into one, keys sorted."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(parts) == 1:
        return parts[0]
    table = pa.table({"k": np.concatenate([p[0] for p in parts]), "c": np.concatenate([p[1] for p in parts])})
    grouped = table.group_by("k").aggregate([("c", "sum")])
    keys = grouped.column("k").to_numpy()
    counts = grouped.column("c_sum").to_numpy()
    order = np.argsort(keys, kind="stable")
    return keys[order].astype(np.int64), counts[order].astype(np.int64)


class FieldCounter:
    """Streaming frequency counter for one field with bounded pending work.

    Example:
        >>> c = FieldCounter()
        >>> c.add(np.array([5, 5, 7]))
        >>> c.result()
        (array([5, 7]), array([2, 1]))
    """

    def __init__(self) -> None:
        self._total: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_size = 0

    def add(self, values: np.ndarray) -> None:
        part = value_counts(values)
        self._pending.append(part)
        self._pending_size += len(part[0])
        if self._pending_size > max(1 << 20, len(self._total[0])):
            self._flush()

    def add_counts(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self._pending.append((keys, counts))
        self._pending_size += len(keys)
        if self._pending_size > max(1 << 20, len(self._total[0])):
            self._flush()

    def _flush(self) -> None:
        self._total = merge_counts([self._total, *self._pending])
        self._pending, self._pending_size = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        return self._total


@dataclass
class FieldVocab:
    """A frequency-ranked vocabulary for one field.

    ``values[i]`` is the raw value with id ``FIRST_VALUE_ID + i``; ``counts[id]``
    the frequency of each id over the vocabulary days (reserved ids included).
    """

    values: np.ndarray
    counts: np.ndarray

    @property
    def num_rows(self) -> int:
        return len(self.counts)

    @staticmethod
    def build(keys: np.ndarray, counts: np.ndarray, max_rows: int) -> FieldVocab:
        """Rank counted values (``MISSING_VALUE`` included) into a capped table."""
        if max_rows < FIRST_VALUE_ID:
            raise ValueError(f"--max-rows-per-table must be >= {FIRST_VALUE_ID}, got {max_rows}")
        is_missing = keys == MISSING_VALUE
        missing_count = int(counts[is_missing].sum())
        keys, counts = keys[~is_missing], counts[~is_missing]
        order = np.lexsort((keys, -counts))  # descending count, then ascending value
        keep = order[: max_rows - FIRST_VALUE_ID]
        oov_count = int(counts.sum() - counts[keep].sum())
        table_counts = np.concatenate([[missing_count, oov_count], counts[keep]]).astype(np.int64)
        return FieldVocab(values=keys[keep].astype(np.int64), counts=table_counts)


class IdMap:
    """Vectorized open-addressing hash map from raw values to table ids.

    O(1) per lookup with linear probing at load factor <= 0.5, so remapping a
    day costs the same whatever the vocabulary size.

    Example:
        >>> m = IdMap(FieldVocab(values=np.array([40, 9]), counts=np.array([0, 0, 3, 1])))
        >>> m.lookup(np.array([9, 40, -1, 123]))
        array([3, 2, 0, 1], dtype=int32)
    """

    _EMPTY = np.int64(-(2**62))
    _MULT = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, vocab: FieldVocab) -> None:
        n = len(vocab.values)
        self._bits = max(4, int(np.ceil(np.log2(max(2 * n, 1)))) + 1)
        size = 1 << self._bits
        self._mask = np.int64(size - 1)
        self._keys = np.full(size, self._EMPTY, dtype=np.int64)
        self._ids = np.full(size, OOV_ID, dtype=np.int32)
        pending = np.arange(n)
        slot = self._hash(vocab.values)
        while len(pending):
            s = slot[pending]
            free = self._keys[s] == self._EMPTY
            cand, cs = pending[free], s[free]
            self._keys[cs] = vocab.values[cand]  # colliding writes: last one wins
            won = self._keys[cs] == vocab.values[cand]
            self._ids[cs[won]] = (FIRST_VALUE_ID + cand[won]).astype(np.int32)
            placed = np.zeros(n, dtype=bool)
            placed[cand[won]] = True
            pending = pending[~placed[pending]]
            slot[pending] = (slot[pending] + 1) & self._mask

    def _hash(self, values: np.ndarray) -> np.ndarray:
        h = values.astype(np.uint64) * self._MULT
        return (h >> np.uint64(64 - self._bits)).astype(np.int64)

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Raw values (``MISSING_VALUE`` for empty) -> int32 ids."""
        out = np.full(len(values), OOV_ID, dtype=np.int32)
        out[values == MISSING_VALUE] = MISSING_ID
        pending = np.flatnonzero(values != MISSING_VALUE)
        slot = self._hash(values[pending])
        while len(pending):
            k = self._keys[slot]
            hit = k == values[pending]
            out[pending[hit]] = self._ids[slot[hit]]
            go_on = ~hit & (k != self._EMPTY)
            pending, slot = pending[go_on], (slot[go_on] + 1) & self._mask
        return out
