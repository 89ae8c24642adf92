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
from torch import nn

from recsearch.data.criteo import FIRST_VALUE_ID, MISSING_ID, MISSING_VALUE, OOV_ID
from recsearch.data.loader import ShardBatches
from recsearch.data.preprocess import load_vocab_file
from recsearch.data.shards import ShardInfo
from recsearch.export.serving import ServingModel
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
        total = 1 + sum(len(v) for v in vocabs)
        # A sentinel key below every other (-1, id 1): the search never runs off the front.
        # Fields are sorted one at a time into the final arrays, so building the lookup of
        # Terabyte-sized tables needs little beyond the 12 bytes per row it keeps.
        keys, ids = np.empty(total, np.int64), np.empty(total, np.int32)
        keys[0], ids[0] = -1, OOV_ID
        at = 1
        for f, values in enumerate(vocabs):
            v = np.asarray(values, np.int64)
            if len(v) and (v.min() < 0 or v.max() >= 1 << _VALUE_BITS):
                raise ValueError(f"field {f}: vocabulary values must be {_VALUE_BITS}-bit unsigned")
            order = np.argsort(v, kind="stable")
            keys[at : at + len(v)] = (np.int64(f) << _VALUE_BITS) | v[order]
            ids[at : at + len(v)] = FIRST_VALUE_ID + order
            at += len(v)
        self.register_buffer("keys", torch.from_numpy(keys))
        self.register_buffer("ids", torch.from_numpy(ids))
        self.register_buffer("field_base", torch.arange(len(vocabs), dtype=torch.int64) << _VALUE_BITS)
        self.last = total - 1
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
        serving: the model's id front (``ServingModel``, its dense transform off: it is
            applied here, in float64 as ``preprocess`` does).
        columns: for each of its sparse features, the feature's column in ``categorical``.
        num_columns: the columns of ``categorical`` (the data's categorical fields).
        num_dense: the columns of ``dense``.
        vocab: the lookup of the served features, in ``columns`` order.
        log1p_dense: apply log1p(max(x, 0)) to ``dense`` (the shards' transform).
    """

    columns: torch.Tensor

    def __init__(
        self,
        *,
        serving: ServingModel,
        columns: list[int],
        num_columns: int,
        num_dense: int,
        vocab: VocabLookup,
        log1p_dense: bool,
    ) -> None:
        super().__init__()
        self.serving = serving
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.int64))
        self.num_columns, self.num_dense = num_columns, num_dense
        self.vocab = vocab
        self.log1p_dense = log1p_dense

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        # one assert per condition: `and` would be control flow on traced values
        torch._assert(dense.size(1) == self.num_dense, "dense must be B x 13 raw counts")
        torch._assert(
            categorical.size(1) == self.num_columns, "categorical must be B x 26 raw values (-1 if empty)"
        )
        # NaN (an empty field) -> 0; an infinite count is no count either
        x = torch.nan_to_num(dense.double(), nan=0.0, posinf=0.0, neginf=0.0)
        if self.log1p_dense:
            x = torch.log1p(torch.clamp(x, min=0.0))
        ids = self.vocab(categorical.long().index_select(1, self.columns))
        values = ids.t().reshape(-1)  # feature-major, one id per (feature, example)
        return self.serving(x.float(), values, torch.ones_like(values, dtype=torch.int32))


def raw_serving_model(model: ArchModel, meta: dict[str, Any], data: str) -> RawServingModel:
    """``model`` behind the vocabularies of the preprocessed Criteo shards in ``data`` (the
    ones it trained on: the same vocabulary key where the run recorded one, and each table's
    rows those of its field's vocabulary)."""
    info = ShardInfo.load(data)
    if info.manifest.get("dataset") != "criteo" or info.jagged_names:
        raise ValueError(
            f"--raw-features {data}: raw-feature export needs shards written by `recsearch preprocess` "
            "from raw Criteo days (these were converted from a table); export without --raw-features"
        )
    key = meta.get("vocab_key")
    if key and info.manifest.get("vocab_key") != key:
        raise ValueError(
            f"--raw-features {data}: its vocabularies are not the ones the run trained with "
            f"(vocab_key {info.manifest.get('vocab_key')} vs the run's {key}); pass the run's shards"
        )
    if list(meta.get("dense_names") or info.dense_names) != info.dense_names:
        raise ValueError(
            f"--raw-features {data}: its dense features are not the run's; pass the run's shards"
        )
    rows = dict(zip(info.sparse_names, info.num_embeddings, strict=True))
    tables = model.spec["tables"]
    vocabs, columns = [], []
    for t in tables:
        f, n = str(t["feature"]), int(t["num_embeddings"])
        if f not in rows:
            raise ValueError(
                f"--raw-features {data}: the run's feature {f} is not a field there; pass the run's shards"
            )
        if n != rows[f]:
            raise ValueError(
                f"--raw-features {data}: {f} has {rows[f]:,} ids there but the run's table has {n:,} rows; "
                "pass the shards the run trained on"
            )
        columns.append(info.sparse_names.index(f))
        values = load_vocab_file(data, columns[-1], "values")
        if len(values) + FIRST_VALUE_ID != n:
            raise ValueError(
                f"{data}: {f}'s vocabulary has {len(values):,} values for {n:,} ids; re-run preprocessing"
            )
        vocabs.append(values)
    transform = str(meta.get("dense_transform") or info.manifest.get("dense_transform") or "")
    return RawServingModel(
        serving=ServingModel(
            model=model, feature_names=[str(t["feature"]) for t in tables], log1p_dense=False
        ),
        columns=columns,
        num_columns=len(info.sparse_names),
        num_dense=len(info.dense_names),
        vocab=VocabLookup(vocabs),
        log1p_dense=transform.startswith("log1p"),
    ).eval()


def shard_day_scores(model: ArchModel, data: str, day: int, batch: int = 65_536) -> torch.Tensor:
    """``model``'s click probabilities (float64) for every row of ``day`` of the shards in
    ``data``, in row order: what a raw-feature export must give for that day's raw lines."""
    out = [torch.zeros(0, dtype=torch.float64)]  # ShardBatches checks the day
    with torch.no_grad():
        for b in ShardBatches(data, [day], batch, shuffle=False):
            out.append(torch.sigmoid(model(b.dense_features, b.sparse_features)).double())
    return torch.cat(out)
