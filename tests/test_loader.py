"""Loader: TorchRec-identical batches, rank splits and within-day shuffling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchrec.datasets.criteo import InMemoryBinaryCriteoIterDataPipe

from recsearch.data.loader import ShardBatches, batch_plan


@pytest.mark.parametrize("world_size, batch_size", [(1, 512), (2, 1000), (3, 4096), (4, 7)])
def test_same_batches_as_torchrec_datapipe(shards: Path, world_size: int, batch_size: int) -> None:
    days = [0, 1, 2]

    def paths(kind: str) -> list[str]:
        return [str(shards / f"day_{d}_{kind}.npy") for d in days]

    for rank in range(world_size):
        ours = list(ShardBatches(str(shards), days, batch_size, rank, world_size, shuffle=False))
        theirs = list(
            InMemoryBinaryCriteoIterDataPipe(
                "train", paths("dense"), paths("sparse"), paths("labels"), batch_size, rank, world_size
            )
        )
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a.dense_features, b.dense_features)
            assert torch.equal(a.labels, b.labels) and a.labels.dtype == b.labels.dtype
            ka, kb = a.sparse_features, b.sparse_features
            assert ka.keys() == kb.keys()
            assert torch.equal(ka.values(), kb.values()) and torch.equal(ka.lengths(), kb.lengths())
            assert ka.stride() == kb.stride()


def _row_keys(batches: list) -> list[tuple]:
    """Identify each row by its (dense, sparse) content."""
    out = []
    for b in batches:
        ids = b.sparse_features.values().view(26, -1).T
        for dense, sparse in zip(b.dense_features, ids, strict=True):
            out.append((*dense.tolist(), *sparse.tolist()))
    return out


def test_shuffle_within_days_split_over_ranks(shards: Path) -> None:
    plain = _row_keys(list(ShardBatches(str(shards), [0, 1], 256, shuffle=False)))
    per_rank = [list(ShardBatches(str(shards), [0, 1], 256, r, 3, shuffle=True, seed=3)) for r in range(3)]
    assert len({len(b) for b in per_rank}) == 1  # every rank runs the same number of steps
    rows = [k for batches in per_rank for k in _row_keys(batches)]
    assert sorted(rows) == sorted(plain)  # every row exactly once over all ranks
    # days stay in order: all of day 0's rows come before day 1's
    day0 = set(plain[:6000])
    order = _row_keys(list(ShardBatches(str(shards), [0, 1], 256, shuffle=True, seed=3)))
    assert set(order[:6000]) == day0 and order != plain
    other_epoch = _row_keys(list(ShardBatches(str(shards), [0, 1], 256, shuffle=True, seed=3, epoch=1)))
    assert other_epoch != order and sorted(other_epoch) == sorted(order)


def test_batch_plan_matches_torchrec_sizes() -> None:
    assert batch_plan(10, 4, 1, drop_last=False) == [4, 4, 2]
    assert batch_plan(10, 4, 2, drop_last=False) == [4, 4, 1, 1]
    assert batch_plan(9, 4, 2, drop_last=False) == [5, 4]  # remainder < ranks: last step grows
    assert batch_plan(3, 4, 4, drop_last=False) == []  # fewer rows than ranks
    for total, bs, world in [(12345, 100, 3), (1001, 10, 4), (17, 5, 2)]:
        sizes = batch_plan(total, bs, world, drop_last=False)
        assert sum(sizes) == total and len(sizes) % world == 0


def test_missing_day_and_bad_rank_are_clear_errors(shards: Path) -> None:
    with pytest.raises(ValueError, match=r"day\(s\) \[7\] not in the manifest; available days: \[0, 1, 2\]"):
        ShardBatches(str(shards), [0, 7], 64)
    with pytest.raises(ValueError, match="rank 2 is outside world size 2"):
        ShardBatches(str(shards), [0], 64, rank=2, world_size=2)


def _copy(shards: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(shards, bad)
    return bad


def _edit_manifest(root: Path, edit) -> None:
    m = json.loads((root / "manifest.json").read_text())
    edit(m)
    (root / "manifest.json").write_text(json.dumps(m))


def test_damaged_shards_are_named_not_trained_on(shards: Path, tmp_path: Path) -> None:
    bad = _copy(shards, tmp_path)
    labels = np.load(bad / "day_1_labels.npy")
    labels[7] = 1 - labels[7]  # one flipped label: same size and shape, other bytes
    np.save(bad / "day_1_labels.npy", labels)
    with pytest.raises(ValueError, match=r"day_1_labels.npy does not match its checksum"):
        ShardBatches(str(bad), [0, 1], 64)
    ShardBatches(str(bad), [0], 64)  # the other days are fine


def test_shapes_dtypes_and_ids_are_checked_without_checksums(shards: Path, tmp_path: Path) -> None:
    bad = _copy(shards, tmp_path)
    _edit_manifest(bad, lambda m: [d.pop("files") for d in m["days"].values()])  # an older manifest
    np.save(bad / "day_1_dense.npy", np.load(bad / "day_1_dense.npy").astype(np.float64))
    with pytest.raises(ValueError, match=r"day_1_dense.npy holds float64 \(6000, 13\), expected float32"):
        ShardBatches(str(bad), [1], 64)
    shutil.copy(shards / "day_1_dense.npy", bad / "day_1_dense.npy")
    np.save(bad / "day_1_labels.npy", np.zeros((5, 1), np.int32))
    with pytest.raises(
        ValueError, match=r"day_1_labels.npy holds int32 \(5, 1\), expected int32 \(6000, 1\)"
    ):
        ShardBatches(str(bad), [1], 64)
    # ids beyond a table: an error naming the feature, not an out-of-range lookup
    _edit_manifest(bad, lambda m: m["num_embeddings"].__setitem__(0, 3))
    with pytest.raises(ValueError, match=r"day 0: feature cat_0 has id \d+, outside its table of 3 rows"):
        list(ShardBatches(str(bad), [0], 512))


def test_each_file_is_hashed_once(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recsearch.data import shards as shard_module

    root = _copy(shards, tmp_path)
    (root / ".verified.json").unlink(missing_ok=True)  # copied along with the shards
    hashed: list[str] = []
    real = shard_module.file_sha256
    monkeypatch.setattr(shard_module, "file_sha256", lambda p: hashed.append(p) or real(p))
    ShardBatches(str(root), [0], 64)
    ShardBatches(str(root), [0], 64)
    assert len(hashed) == 3  # dense, sparse, labels of day 0, once in this process
    monkeypatch.setattr(shard_module, "_verified_here", set())  # as a new process would start
    ShardBatches(str(root), [0], 64)
    assert len(hashed) == 3  # the .verified.json record of (size, mtime) spares the work
    (root / "day_0_dense.npy").touch()  # modified since: verified again
    monkeypatch.setattr(shard_module, "_verified_here", set())
    ShardBatches(str(root), [0], 64)
    assert hashed[3:] == [f"{root}/day_0_dense.npy"]
