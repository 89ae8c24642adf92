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
    """Distinct values (in no particular order) and their counts, by hashing (O(n))."""
    if len(values) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    vc = pc.value_counts(pa.array(values))
    return vc.field("values").to_numpy().astype(np.int64), vc.field("counts").to_numpy().astype(np.int64)


def value_counts_masked(values: np.ndarray, missing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`value_counts`, with entries flagged in ``missing`` counted as ``MISSING_VALUE``."""
    if missing is not None and missing.any():
        values = np.where(missing, MISSING_VALUE, values.astype(np.int64))
    return value_counts(values)


def merge_counts(
    parts: list[tuple[np.ndarray, np.ndarray]], sort: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Sum several (keys, counts) tables into one (keys sorted if ``sort``)."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(parts) == 1:
        keys, counts = parts[0]
    else:
        table = pa.table(
            {"k": np.concatenate([p[0] for p in parts]), "c": np.concatenate([p[1] for p in parts])}
        )
        grouped = table.group_by("k").aggregate([("c", "sum")])
        keys = grouped.column("k").to_numpy().astype(np.int64)
        counts = grouped.column("c_sum").to_numpy().astype(np.int64)
    if sort:
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
    return keys, counts


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

    def add(self, values: np.ndarray, missing: np.ndarray | None = None) -> None:
        """Count ``values``; entries flagged in ``missing`` count as ``MISSING_VALUE``."""
        self.add_counts(*value_counts_masked(values, missing))

    def add_counts(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self._pending.append((keys, counts))
        self._pending_size += len(keys)
        if self._pending_size > max(1 << 17, len(self._total[0])):
            self._flush()

    def _flush(self) -> None:
        self._total = merge_counts([self._total, *self._pending])
        self._pending, self._pending_size = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values, sorted, and their counts."""
        self._total = merge_counts([self._total, *self._pending], sort=True)
        self._pending, self._pending_size = [], 0
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
    """Vectorized open-addressing hash map from raw 32-bit values to table ids.

    Each slot packs ``value << 32 | id`` into one uint64 (0 = empty; ids are >= 2),
    so a lookup is one gather per probe. Linear probing at load factor <= 0.25
    (<= 0.5 for tables over a million values) keeps probes near one, so remapping
    costs the same whatever the vocabulary size.

    Example:
        >>> m = IdMap(FieldVocab(values=np.array([40, 9]), counts=np.array([0, 0, 3, 1])))
        >>> m.lookup(np.array([9, 40, -1, 123]))
        array([3, 2, 0, 1], dtype=int32)
    """

    _MULT = np.uint64(0x9E3779B97F4A7C15)
    _LOW = np.uint64(0xFFFFFFFF)

    def __init__(self, vocab: FieldVocab) -> None:
        n = len(vocab.values)
        if n and (vocab.values.min() < 0 or vocab.values.max() >= 2**32):
            raise ValueError("IdMap keys must be 32-bit unsigned values")
        spare = 2 if n <= 1 << 20 else 1
        self._bits = max(4, int(np.ceil(np.log2(max(n, 1)))) + spare)
        self._mask = np.uint64((1 << self._bits) - 1)
        self._table = np.zeros(1 << self._bits, dtype=np.uint64)
        keys = vocab.values.astype(np.uint64)
        entries = (keys << np.uint64(32)) | np.arange(FIRST_VALUE_ID, FIRST_VALUE_ID + n, dtype=np.uint64)
        # Insert in rounds; on a contested slot the lowest id (most frequent value) wins,
        # so heavy hitters of Zipf-skewed data sit in their home slot: one probe each.
        pending = np.arange(n)
        slot = self._hash(keys)
        winner = np.full(len(self._table), n, dtype=np.int64)
        while len(pending):
            s = slot[pending]
            free = self._table[s] == 0
            cand, cs = pending[free], s[free]
            np.minimum.at(winner, cs, cand)
            won = winner[cs] == cand
            self._table[cs[won]] = entries[cand[won]]
            winner[cs] = n
            placed = np.zeros(n, dtype=bool)
            placed[cand[won]] = True
            pending = pending[~placed[pending]]
            slot[pending] = (slot[pending] + 1) & int(self._mask)

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        """Home slots (int64, so indexing needs no conversion) of uint64 keys."""
        with np.errstate(over="ignore"):
            return ((keys * self._MULT) >> np.uint64(64 - self._bits)).view(np.int64)

    def lookup(self, values: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
        """Raw values -> int32 ids; ``missing`` (default: ``values == MISSING_VALUE``) -> 0."""
        if missing is None:
            missing = values == MISSING_VALUE
        keys = values.astype(np.uint64)
        slot = self._hash(keys)
        mask = int(self._mask)
        entry = self._table[slot]
        words = entry.view(np.uint32).reshape(-1, 2)  # little-endian: (id, value)
        hit = words[:, 1] == values.astype(np.uint32)
        out = words[:, 0].astype(np.int32)
        collided = ~hit
        out[collided] = OOV_ID
        collided &= entry != 0
        todo = np.flatnonzero(collided)  # a different value sits in the home slot: probe on
        while len(todo):
            slot_t = (slot[todo] + 1) & mask
            slot[todo] = slot_t
            entry_t = self._table[slot_t]
            hit_t = (entry_t >> np.uint64(32)) == keys[todo]
            out[todo[hit_t]] = (entry_t[hit_t] & self._LOW).astype(np.int32)
            todo = todo[~hit_t & (entry_t != 0)]
        out[missing] = MISSING_ID
        return out


def saved_counts(root: str, feature: str) -> np.ndarray:
    """The frequency of each id of ``feature`` over the vocabulary days, as preprocessing
    (``vocab/<feature>_counts.npy``) or ``convert`` (``vocab/<feature>.json``) saved it."""
    from iopath.common.file_io import g_pathmgr

    from recsearch.utils.fileio import read_json

    npy, js = f"{root}/vocab/{feature}_counts.npy", f"{root}/vocab/{feature}.json"
    if g_pathmgr.exists(npy):
        return np.load(g_pathmgr.get_local_path(npy)).astype(np.int64)
    if g_pathmgr.exists(js):
        return np.asarray(read_json(js)["counts"], dtype=np.int64)
    raise ValueError(
        f"{root}: no saved frequency counts for {feature} (vocab/{feature}_counts.npy); "
        "re-run `recsearch preprocess` or `recsearch convert` into a new directory"
    )
