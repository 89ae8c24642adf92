"""Per-day shards -> TorchRec ``Batch`` (dense, ``KeyedJaggedTensor``, labels).

Rows stream day by day in order, shuffled within each day. Global batches are
dealt round-robin to ranks with the same batch sizes as TorchRec's
``InMemoryBinaryCriteoIterDataPipe`` (so every rank runs the same number of
steps); with ``shuffle=False`` the batches are identical to that datapipe's.
Shards are memory-mapped: memory does not grow with the number of days.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from torch.utils.data import IterableDataset

logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)  # noisy on torchrec import
from torchrec.datasets.utils import Batch  # noqa: E402
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor  # noqa: E402

from recsearch.data.shards import ShardInfo, jagged_kind  # noqa: E402


def batch_plan(total_rows: int, batch_size: int, world_size: int, drop_last: bool) -> list[int]:
    """Sizes of the global batches, in stream order, as TorchRec's datapipe cuts them.

    Example:
        >>> batch_plan(10, 4, 1, drop_last=False)
        [4, 4, 2]
        >>> batch_plan(10, 2, 3, drop_last=True)
        [2, 2, 2]
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    full = total_rows // batch_size // world_size * world_size
    last = np.zeros(world_size, dtype=np.int64)
    remainder = total_rows % (world_size * batch_size)
    if not drop_last and remainder > 0:
        if remainder < world_size:
            full -= world_size
            last += batch_size
        else:
            last += remainder // world_size
        last[: remainder % world_size] += 1
    if full < 0:  # fewer rows than ranks: TorchRec's datapipe yields nothing
        return []
    sizes = [batch_size] * full
    if last[0] > 0:
        sizes += [int(x) for x in last]
    return sizes


class ShardBatches(IterableDataset[Batch]):
    """Batches of one rank over some days of a shard directory.

    Args:
        root: shard directory (with ``manifest.json``).
        days: days to read, in this order.
        batch_size: rows per batch (per rank).
        rank: this process's rank.
        world_size: number of ranks sharing the days.
        shuffle: shuffle rows within each day (seeded by ``seed``, ``epoch``, day).
        seed: shuffle seed.
        epoch: changes the shuffle between passes.
        drop_last: drop the final partial batches.

    Example:
        >>> batches = ShardBatches("shards/", days=[0, 1], batch_size=512)  # doctest: +SKIP
        >>> next(iter(batches)).sparse_features.keys()[:2]  # doctest: +SKIP
        ['cat_0', 'cat_1']
    """

    def __init__(
        self,
        root: str,
        days: list[int],
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.info = ShardInfo.load(root)
        self.info.check_days(days)
        self.days, self.batch_size = list(days), batch_size
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self.keys = self.info.sparse_names + self.info.jagged_names
        self._arrays = [self._open(d) for d in self.days]
        self._rows = np.array([len(a.labels) for a in self._arrays], dtype=np.int64)
        self._sizes = batch_plan(int(self._rows.sum()), batch_size, world_size, drop_last)

    def _open(self, day: int) -> _DayArrays:
        self.info.verify_day(day)  # checksums, once per file
        rows = self.info.days[day]

        def load(kind: str, dtype: type, width: int, length: int | None = rows) -> np.ndarray:
            path = self.info.paths(day, kind)
            if not g_pathmgr.exists(path):
                raise ValueError(f"{path} is missing; re-run preprocessing into {self.info.root}")
            try:
                a = np.load(g_pathmgr.get_local_path(path), mmap_mode="r")
            except (ValueError, OSError) as e:
                raise ValueError(f"{path} is not a readable .npy file ({e}); re-run preprocessing") from None
            if a.dtype != dtype or a.ndim != 2 or a.shape[1] != width or length not in (None, a.shape[0]):
                raise ValueError(
                    f"{path} holds {a.dtype} {a.shape}, expected {np.dtype(dtype)} "
                    f"({'N' if length is None else length}, {width}); re-run preprocessing"
                )
            return a

        f = self.info
        limits = np.array(f.num_embeddings, dtype=np.int64)
        arrays = _DayArrays(
            load("dense", np.float32, len(f.dense_names)),
            load("sparse", np.int32, len(f.sparse_names)),
            load("labels", np.int32, 1),
            [
                (
                    load(jagged_kind(n, "values"), np.int32, 1, None).reshape(-1),
                    load(jagged_kind(n, "lengths"), np.int32, 1).reshape(-1),
                )
                for n in f.jagged_names
            ],
            limits=limits,
            where=f"{f.root}: day {day}",
            names=self.keys,
        )
        sizes = {len(arrays.dense), len(arrays.sparse), len(arrays.labels), rows}
        sizes.update(len(j[1]) for j in arrays.jagged)
        if len(sizes) != 1:
            raise ValueError(
                f"{self.info.root}: day {day} shards disagree on the row count (manifest: {rows}); "
                "re-run preprocessing"
            )
        return arrays

    def __len__(self) -> int:
        return len(self._sizes[self.rank :: self.world_size])

    def _order(self, i: int) -> np.ndarray | None:
        if not self.shuffle:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, self.days[i]])
        return rng.permutation(int(self._rows[i]))

    def __iter__(self) -> Iterator[Batch]:
        day_start = np.concatenate([[0], np.cumsum(self._rows)])
        orders: dict[int, np.ndarray | None] = {}
        pos = 0
        for k, size in enumerate(self._sizes):
            start, pos = pos, pos + size
            if k % self.world_size != self.rank:
                continue
            parts = []
            first = int(np.searchsorted(day_start, start, side="right") - 1)
            for i in range(first, len(self.days)):
                lo, hi = max(start, day_start[i]), min(pos, day_start[i + 1])
                if lo >= hi:
                    if day_start[i] >= pos:
                        break
                    continue
                if i not in orders:
                    orders.clear()
                    orders[i] = self._order(i)
                order = orders[i]
                local = np.arange(lo - day_start[i], hi - day_start[i])
                rows = local if order is None else np.sort(order[local])
                parts.append(self._arrays[i].take(rows))
            yield self._to_batch(parts)

    def _to_batch(self, parts: list[tuple[np.ndarray, ...]]) -> Batch:
        cols = [np.concatenate(p) if len(parts) > 1 else p[0] for p in zip(*parts, strict=True)]
        dense, sparse, labels, jagged = cols[0], cols[1], cols[2], cols[3:]
        b, n = len(labels), sparse.shape[1]
        values = [np.ascontiguousarray(sparse.T).reshape(-1)]
        lengths = [np.ones(n * b, dtype=np.int32)]
        length_per_key = [b] * n
        for k in range(0, len(jagged), 2):
            values.append(jagged[k])
            lengths.append(jagged[k + 1])
            length_per_key.append(int(jagged[k + 1].sum()))
        return Batch(
            dense_features=torch.from_numpy(dense),
            sparse_features=KeyedJaggedTensor(
                keys=self.keys,
                values=torch.from_numpy(np.concatenate(values) if jagged else values[0]),
                lengths=torch.from_numpy(np.concatenate(lengths) if jagged else lengths[0]),
                stride=b,
                length_per_key=length_per_key,
                offset_per_key=[0, *np.cumsum(length_per_key).tolist()],
            ),
            labels=torch.from_numpy(labels.reshape(-1)),
        )


class _DayArrays:
    """One day's memory-mapped shard arrays; multi-valued features as (values, lengths)."""

    def __init__(
        self,
        dense: np.ndarray,
        sparse: np.ndarray,
        labels: np.ndarray,
        jagged: list[tuple[np.ndarray, np.ndarray]],
        limits: np.ndarray,
        where: str,
        names: list[str],
    ) -> None:
        self.dense, self.sparse, self.labels = dense, sparse, labels
        self.jagged = [(v, ln, np.concatenate([[0], np.cumsum(ln, dtype=np.int64)])) for v, ln in jagged]
        self.limits, self.where, self.names = limits, where, names

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        out = [self.dense[rows], self.sparse[rows], self.labels[rows]]
        self._check_ids(out[1], 0)
        if out[2].size and (out[2].min() < 0 or out[2].max() > 1):
            raise ValueError(
                f"{self.where}: labels other than 0/1; the shards are damaged, re-run preprocessing"
            )
        for j, (values, lengths, offsets) in enumerate(self.jagged):
            ln = np.asarray(lengths[rows], dtype=np.int32)
            starts = offsets[rows]
            # index of every id of the selected rows: start of its row + position within the row
            idx = np.repeat(starts - np.cumsum(ln) + ln, ln) + np.arange(int(ln.sum()))
            ids = np.asarray(values[idx], dtype=np.int32)
            self._check_ids(ids.reshape(-1, 1), self.sparse.shape[1] + j)
            out += [ids, ln]
        return tuple(out)

    def _check_ids(self, ids: np.ndarray, first: int) -> None:
        """Every id inside its table (a cheap check per batch: an id out of range would
        otherwise be an out-of-bounds lookup in the embedding kernel)."""
        if not ids.size:
            return
        limits = self.limits[first : first + ids.shape[1]]
        bad = (ids < 0) | (ids >= limits)
        if bad.any():
            col = int(np.flatnonzero(bad.any(axis=0))[0])
            value = int(ids[:, col][bad[:, col]][0])
            raise ValueError(
                f"{self.where}: feature {self.names[first + col]} has id {value}, outside its table of "
                f"{int(limits[col])} rows (manifest.json); shards and manifest disagree, re-run preprocessing"
            )
