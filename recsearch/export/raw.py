"""Serving raw Criteo features: the shards' vocabularies baked into the exported model.

``recsearch export --raw-features DATA`` wraps a trained model in :class:`RawServingModel`,
whose ``forward(dense, categorical)`` takes a raw log line's values:
* ``dense``: B x 13 raw integer counts (any float or int dtype; NaN = missing); the module
  applies the shards' transform log1p(max(x, 0)), missing -> 0, in float64 as ``preprocess``
  does;
* ``categorical``: int64 B x 26, the 32-bit value of each 8-digit hex string (``int(s, 16)``),
  -1 where the field is empty;
and returns click probabilities (B,). The lookup from raw value to table id is the one
``preprocess`` applied (``recsearch.data.vocab``): missing -> 0, a value outside the field's
vocabulary (rare beyond the table cap, or unseen on the vocabulary days) -> 1, else its
frequency rank. A serving stack then needs no copy of the vocabularies, so training and
serving cannot disagree on them.
"""

# No `from __future__ import annotations`: torchrec.fx copies forward's annotations into the
# traced code, and TorchScript cannot read them as strings.
from typing import Any

import numpy as np
import torch
from iopath.common.file_io import g_pathmgr
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.data.criteo import FIRST_VALUE_ID, MISSING_ID, MISSING_VALUE, OOV_ID
from recsearch.data.shards import ShardInfo
from recsearch.models.builder import ArchModel

_VALUE_BITS = 32  # Criteo's categorical values are 8 hex digits


class VocabLookup(nn.Module):
    """Raw categorical values (B, F) -> table ids (B, F), field ``f`` by ``vocabs[f]``.

    All fields' vocabularies live in one sorted int64 array of ``f << 32 | value`` keys with
    their int32 ids (12 bytes per vocabulary row, a fraction of any embedding row), so one
    ``torch.searchsorted`` answers a whole batch; a lookup costs O(log rows) per value.

    Args:
        vocabs: per field, the raw values in id order (``values[i]`` has id
            ``FIRST_VALUE_ID + i``), as ``preprocess`` saves them in ``vocab/<field>_values.npy``.
    """

    keys: torch.Tensor
    ids: torch.Tensor
    field_base: torch.Tensor

    def __init__(self, vocabs: list[np.ndarray]) -> None:
        super().__init__()
        keys = [np.array([-1], np.int64)]  # a sentinel below every key: the search never runs off
        ids = [np.array([OOV_ID], np.int32)]
        for f, values in enumerate(vocabs):
            v = np.asarray(values, np.int64)
            if len(v) and (v.min() < 0 or v.max() >= 1 << _VALUE_BITS):
                raise ValueError(f"field {f}: vocabulary values must be {_VALUE_BITS}-bit unsigned")
            keys.append((np.int64(f) << _VALUE_BITS) | v)
            ids.append(np.arange(FIRST_VALUE_ID, FIRST_VALUE_ID + len(v), dtype=np.int32))
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys, kind="stable")
        self.register_buffer("keys", torch.from_numpy(all_keys[order].copy()))
        self.register_buffer("ids", torch.from_numpy(np.concatenate(ids)[order].copy()))
        self.register_buffer("field_base", torch.arange(len(vocabs), dtype=torch.int64) << _VALUE_BITS)
        self.last = int(len(all_keys) - 1)
        # ints on the module: TorchScript reads no module-level globals
        self.value_limit, self.missing_value = 1 << _VALUE_BITS, MISSING_VALUE
        self.missing_id, self.oov_id = MISSING_ID, OOV_ID

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        valid = (values >= 0) & (values < self.value_limit)
        query = torch.where(valid, values, torch.zeros_like(values)) + self.field_base
        pos = torch.searchsorted(self.keys, query.reshape(-1)).clamp(max=self.last).reshape(query.shape)
        hit = valid & (self.keys[pos] == query)
        ids = torch.where(hit, self.ids[pos].long(), torch.full_like(values, self.oov_id))
        return torch.where(values == self.missing_value, torch.full_like(values, self.missing_id), ids)


class RawServingModel(nn.Module):
    """A trained model behind the raw-feature front: ``forward(dense, categorical)`` ->
    click probabilities (B,). See the module docstring for the inputs.

    Args:
        model: the trained (unsharded) model.
        feature_names: the model's sparse features, in its tables' order.
        columns: for each of them, its column in ``categorical``.
        num_columns: the columns of ``categorical`` (the data's categorical fields).
        vocab: the lookup of those features, in the same order.
        log1p_dense: apply log1p(max(x, 0)) to ``dense`` (the shards' transform).
    """

    columns: torch.Tensor

    def __init__(
        self,
        *,
        model: ArchModel,
        feature_names: list[str],
        columns: list[int],
        num_columns: int,
        vocab: VocabLookup,
        log1p_dense: bool,
    ) -> None:
        super().__init__()
        self.model = model
        self.feature_names = feature_names
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.int64))
        self.num_columns = num_columns
        self.vocab = vocab
        self.log1p_dense = log1p_dense

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        x = torch.nan_to_num(dense.double(), nan=0.0)
        if self.log1p_dense:
            x = torch.log1p(torch.clamp(x, min=0.0))
        ids = self.vocab(categorical.long().index_select(1, self.columns))
        values = ids.t().reshape(-1)  # feature-major, one id per (feature, example)
        lengths = torch.ones_like(values, dtype=torch.int32)
        sparse = KeyedJaggedTensor(keys=self.feature_names, values=values, lengths=lengths)
        return torch.sigmoid(self.model(x.float(), sparse))


def raw_serving_model(model: ArchModel, meta: dict[str, Any], data: str) -> RawServingModel:
    """``model`` behind the vocabularies of the preprocessed Criteo shards in ``data`` (the
    ones it trained on: each table's rows must match its field's vocabulary)."""
    info = ShardInfo.load(data)
    files = info.manifest.get("vocab_files")
    if info.manifest.get("dataset") != "criteo" or not isinstance(files, dict) or info.jagged_names:
        raise ValueError(
            f"--raw-features {data}: raw-feature export needs shards written by `recsearch preprocess` "
            "from raw Criteo days (these were converted from a table); export without --raw-features"
        )
    if list(meta.get("dense_names") or info.dense_names) != info.dense_names:
        raise ValueError(
            f"--raw-features {data}: its dense features are not the run's; pass the run's shards"
        )
    rows = dict(zip(info.sparse_names, info.num_embeddings, strict=True))
    features = [str(t["feature"]) for t in model.spec["tables"]]
    vocabs = []
    for f, table in zip(features, model.spec["tables"], strict=True):
        if f not in rows or int(table["num_embeddings"]) != rows[f]:
            have = f"{rows[f]:,} ids" if f in rows else "no such field"
            raise ValueError(
                f"--raw-features {data}: {f} has {have} there but the run's table has "
                f"{int(table['num_embeddings']):,} rows; pass the shards the run trained on"
            )
        path = f"{data.rstrip('/')}/{files[f]['values']}"
        values = np.load(g_pathmgr.get_local_path(path), allow_pickle=False)
        if len(values) + FIRST_VALUE_ID != rows[f]:
            raise ValueError(f"{path}: {len(values):,} values for {rows[f]:,} ids; re-run preprocessing")
        vocabs.append(values)
    transform = str(meta.get("dense_transform") or info.manifest.get("dense_transform") or "")
    return RawServingModel(
        model=model,
        feature_names=features,
        columns=[info.sparse_names.index(f) for f in features],
        num_columns=len(info.sparse_names),
        vocab=VocabLookup(vocabs),
        log1p_dense=transform.startswith("log1p"),
    ).eval()


def shard_day_scores(model: ArchModel, data: str, day: int, batch: int = 65_536) -> torch.Tensor:
    """``model``'s click probabilities (float64) for every row of ``day`` of the shards in
    ``data``: what a raw-feature export must give for that day's raw lines."""
    info = ShardInfo.load(data)
    info.check_days([day])
    features = [str(t["feature"]) for t in model.spec["tables"]]
    cols = [info.sparse_names.index(f) for f in features]
    ids = np.load(g_pathmgr.get_local_path(info.paths(day, "sparse")), mmap_mode="r")
    dense = np.load(g_pathmgr.get_local_path(info.paths(day, "dense")), mmap_mode="r")
    out = []
    with torch.no_grad():
        for lo in range(0, len(ids), batch):
            values = torch.from_numpy(
                np.ascontiguousarray(ids[lo : lo + batch, cols].T).reshape(-1).astype(np.int64)
            )
            lengths = torch.ones_like(values, dtype=torch.int32)
            sparse = KeyedJaggedTensor(keys=features, values=values, lengths=lengths)
            out.append(
                torch.sigmoid(model(torch.from_numpy(np.array(dense[lo : lo + batch])), sparse)).double()
            )
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
