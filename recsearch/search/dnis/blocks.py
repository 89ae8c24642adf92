"""Frequency blocks of each field (DNIS Sec. 2.3): a field's ids are frequency ranks, so a
block is an id range. Block 0 holds the reserved ids (0 missing, 1 rare or unseen), whose
frequency says nothing about a value; blocks 1..L-1 cut the value ids so that each holds
an equal share of the value occurrences (or the shares ``bounds`` give)."""

from __future__ import annotations

import numpy as np

from recsearch.data.criteo import FIRST_VALUE_ID


def frequency_blocks(counts: np.ndarray, blocks: int, bounds: list[float] | None = None) -> list[int]:
    """The first id of each block of a field with these per-id ``counts`` (id order).

    Blocks that would hold no id are merged away, so a small vocabulary gets fewer blocks.

    >>> frequency_blocks(np.array([5, 3, 50, 30, 10, 5, 3, 2]), blocks=3)
    [0, 2, 3]
    """
    n = len(counts)
    if n <= FIRST_VALUE_ID:
        return [0]
    starts = [0, FIRST_VALUE_ID]
    values = np.asarray(counts[FIRST_VALUE_ID:], dtype=np.float64)
    total = values.sum()
    # no occurrences counted (a value table from other days): cut by rows instead
    cum = np.cumsum(values) / total if total > 0 else np.arange(1, len(values) + 1) / len(values)
    shares = list(bounds) if bounds else [k / (blocks - 1) for k in range(1, blocks - 1)]
    for share in shares:
        # the block ends after the first id at which the cumulative share reaches ``share``
        first_after = FIRST_VALUE_ID + int(np.searchsorted(cum, share - 1e-12, side="left")) + 1
        if starts[-1] < first_after < n:
            starts.append(first_after)
    return starts
