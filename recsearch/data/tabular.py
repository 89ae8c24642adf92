"""``recsearch convert``: any CSV/TSV/parquet table -> the per-day shard layout.

A YAML schema (see ``configs/datasets/movielens100k.yaml``) names the label (a
column, or a rule such as ``rating > 3``), integer/float columns, categorical
columns, optional multi-valued columns (a delimited string, or a set of 0/1
indicator columns) and an optional timestamp that cuts the rows into
chronological "days". Categorical values get the same frequency-ranked ids as
Criteo preprocessing, so these shards run through everything Criteo shards do.
"""

from __future__ import annotations

import math
import operator
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from iopath.common.file_io import g_pathmgr

from recsearch.data.criteo import FIRST_VALUE_ID, MISSING_ID, MISSING_VALUE, OOV_ID, format_days, parse_days
from recsearch.data.shards import DayShardWriter, write_manifest
from recsearch.data.vocab import FieldVocab, IdMap, value_counts
from recsearch.utils.fileio import check_out_dir, write_json

_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_RULE_RE = re.compile(r"^\s*(\w+)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.]+)\s*$")
_TRANSFORMS = ("log1p", "none")


@dataclass
class MultiValued:
    name: str
    column: str | None = None
    separator: str = "|"
    indicators: list[str] = field(default_factory=list)


@dataclass
class TableSchema:
    """A parsed and validated dataset schema."""

    name: str
    source: str
    joins: list[dict[str, str]]
    label_column: str
    label_rule: str | None
    dense: list[str]
    dense_transform: str
    sparse: list[str]
    multi_valued: list[MultiValued]
    timestamp: str | None
    num_days: int
    vocab_days: list[int] | None
    max_rows_per_table: int

    @staticmethod
    def load(path: str) -> TableSchema:
        from recsearch.utils.config import read_yaml

        raw = read_yaml(path)
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a schema is a YAML mapping")
        allowed = {
            "name",
            "source",
            "joins",
            "label",
            "dense",
            "dense_transform",
            "sparse",
            "multi_valued",
            "timestamp",
            "days",
            "vocab_days",
            "max_rows_per_table",
        }
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ValueError(f"{path}: unknown schema key(s) {unknown}; allowed: {sorted(allowed)}")
        for key in ("source", "label"):
            if key not in raw:
                raise ValueError(f"{path}: the schema needs a '{key}' entry")
        label = raw["label"]
        if isinstance(label, str):
            m = _RULE_RE.match(label)
            label_column, label_rule = (m.group(1), label) if m else (label, None)
        else:
            raise ValueError(f"{path}: label is a column name or a rule such as 'rating > 3'")
        transform = raw.get("dense_transform", "log1p")
        if transform not in _TRANSFORMS:
            raise ValueError(f"{path}: dense_transform must be one of {_TRANSFORMS}, got {transform!r}")
        multi = []
        for mv in raw.get("multi_valued", []) or []:
            if not isinstance(mv, dict) or "name" not in mv or ("column" in mv) == ("indicators" in mv):
                raise ValueError(
                    f"{path}: each multi_valued entry has a name and either column or indicators"
                )
            multi.append(MultiValued(**mv))
        sparse = list(raw.get("sparse", []) or [])
        if not sparse and not multi:
            raise ValueError(f"{path}: the schema needs at least one sparse or multi_valued feature")
        num_days = int(raw.get("days", 1))
        if num_days < 1:
            raise ValueError(f"{path}: days must be >= 1")
        return TableSchema(
            name=str(raw.get("name", os.path.basename(path).split(".")[0])),
            source=raw["source"],
            joins=list(raw.get("joins", []) or []),
            label_column=label_column,
            label_rule=label_rule,
            dense=list(raw.get("dense", []) or []),
            dense_transform=transform,
            sparse=sparse,
            multi_valued=multi,
            timestamp=raw.get("timestamp"),
            num_days=num_days,
            vocab_days=parse_days(str(raw["vocab_days"])) if "vocab_days" in raw else None,
            max_rows_per_table=int(raw.get("max_rows_per_table", 5_000_000)),
        )


def read_table(path: str) -> pa.Table:
    """Read a parquet, CSV or TSV file (by extension; ``.gz`` allowed for text)."""
    local = g_pathmgr.get_local_path(path)
    if not os.path.exists(local):
        raise ValueError(f"data file {path} not found (check the schema's paths and --data-root)")
    name = path.lower()
    if ".parquet" in name:
        return pq.read_table(local)
    if name.endswith((".tsv", ".tsv.gz", ".tab")):
        return pacsv.read_csv(local, parse_options=pacsv.ParseOptions(delimiter="\t"))
    if name.endswith((".csv", ".csv.gz")):
        return pacsv.read_csv(local)
    raise ValueError(f"{path}: unknown table format; use .parquet, .csv or .tsv")


def _column(table: pa.Table, name: str, what: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise ValueError(f"{what} column {name!r} is not in the table; columns: {table.column_names}")
    return table.column(name)


def _load_joined(schema: TableSchema, root: str) -> pa.Table:
    table = read_table(os.path.join(root, schema.source))
    table = table.append_column("__row", pa.array(np.arange(table.num_rows)))
    for j in schema.joins:
        if not isinstance(j, dict) or "path" not in j or "key" not in j:
            raise ValueError("each join needs 'path' and 'key' (the column both tables share)")
        side = read_table(os.path.join(root, j["path"]))
        _column(table, j["key"], "join key")
        _column(side, j["key"], "join key")
        table = table.join(side, keys=j["key"], join_type="left outer")
    return table.sort_by("__row")


def _labels(schema: TableSchema, table: pa.Table) -> np.ndarray:
    col = _column(table, schema.label_column, "label").to_numpy(zero_copy_only=False)
    if schema.label_rule is None:
        labels = col.astype(np.float64)
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"label column {schema.label_column!r} must hold 0/1; use a rule such as 'x > 3'"
            )
        return labels.astype(np.int32)
    m = _RULE_RE.match(schema.label_rule)
    assert m is not None
    return _OPS[m.group(2)](col.astype(np.float64), float(m.group(3))).astype(np.int32)


def _day_of_rows(schema: TableSchema, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Row order (chronological when a timestamp is given) and each row's day."""
    n = table.num_rows
    if schema.timestamp:
        ts = _column(table, schema.timestamp, "timestamp").to_numpy(zero_copy_only=False)
        order = np.argsort(ts, kind="stable")
    else:
        order = np.arange(n)
    if n < schema.num_days:
        raise ValueError(
            f"the table has {n} row(s), fewer than days: {schema.num_days}; every day needs rows "
            "(lower 'days' in the schema)"
        )
    day = (np.arange(n) * schema.num_days) // max(n, 1)
    return order, day


def _keys(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Categorical values -> int64 keys (dictionary indices; MISSING_VALUE for null)
    and the dictionary (the value of each key)."""
    strings = col.cast(pa.string())
    strings = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)  # "" is missing
    enc = pc.dictionary_encode(strings)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    idx = enc.indices.fill_null(MISSING_VALUE).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, enc.dictionary.to_pylist()


def _tokens(mv: MultiValued, table: pa.Table) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A multi-valued feature -> (token keys, per-row lengths, token names)."""
    if mv.indicators:
        onehot = np.stack(
            [_column(table, c, "indicator").to_numpy(zero_copy_only=False) for c in mv.indicators], axis=1
        )
        rows, cols = np.nonzero(onehot > 0)
        return cols.astype(np.int64), np.bincount(rows, minlength=len(onehot)), list(mv.indicators)
    col = _column(table, mv.column or "", "multi-valued").cast(pa.string()).fill_null("")
    split = pc.split_pattern(col, mv.separator).combine_chunks()
    flat = split.flatten()
    row = np.repeat(np.arange(len(split)), pc.list_value_length(split).to_numpy(zero_copy_only=False))
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    keys, names = _keys(flat.filter(pa.array(keep)))
    return keys, np.bincount(row[keep], minlength=len(split)), names


def convert_table(schema_path: str, output: str, data_root: str | None = None) -> dict[str, Any]:
    """Convert a table described by a YAML schema into per-day shards."""
    check_out_dir(output)
    schema = TableSchema.load(schema_path)
    root = data_root if data_root is not None else os.path.dirname(os.path.abspath(schema_path))
    table = _load_joined(schema, root)
    order, day_of = _day_of_rows(schema, table)
    table = table.take(pa.array(order))
    n = table.num_rows
    days = list(range(schema.num_days))
    vocab_days = schema.vocab_days if schema.vocab_days is not None else (days[:-1] or days)
    if set(vocab_days) - set(days):
        raise ValueError(f"vocab_days {vocab_days} are outside days 0-{schema.num_days - 1}")
    in_vocab = np.isin(day_of, vocab_days)

    labels = _labels(schema, table)
    dense = np.zeros((n, len(schema.dense)), np.float32)
    for j, c in enumerate(schema.dense):
        x = _column(table, c, "dense").cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
        dense[:, j] = np.log1p(np.maximum(x, 0)) if schema.dense_transform == "log1p" else x
    sparse = np.zeros((n, len(schema.sparse)), np.int32)
    vocabs: dict[str, tuple[FieldVocab, list[Any]]] = {}
    for j, c in enumerate(schema.sparse):
        keys, names = _keys(_column(table, c, "sparse"))
        vocab = _vocab(keys[in_vocab], schema.max_rows_per_table)
        sparse[:, j] = IdMap(vocab).lookup(keys)
        vocabs[c] = (vocab, names)
    jagged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for mv in schema.multi_valued:
        tokens, lengths, names = _tokens(mv, table)
        row_of_token = np.repeat(np.arange(n), lengths)
        vocab = _vocab(tokens[in_vocab[row_of_token]], schema.max_rows_per_table)
        jagged[mv.name] = (IdMap(vocab).lookup(tokens), lengths)
        vocabs[mv.name] = (vocab, names)

    g_pathmgr.mkdirs(f"{output}/vocab")
    records = {}
    offsets = {k: np.concatenate([[0], np.cumsum(v[1])]) for k, v in jagged.items()}
    for d in days:
        rows = np.flatnonzero(day_of == d)
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        writer = DayShardWriter(output, d, len(schema.dense), len(schema.sparse), list(jagged))
        writer.append(
            dense[lo:hi],
            sparse[lo:hi],
            labels[lo:hi],
            {k: (v[0][offsets[k][lo] : offsets[k][hi]], v[1][lo:hi]) for k, v in jagged.items()},
        )
        records[str(d)] = writer.finish({"source": schema.source, "skipped_lines": 0})
    for name, (vocab, names) in vocabs.items():
        write_json(
            f"{output}/vocab/{name}.json",
            {
                "ids": {"missing": MISSING_ID, "rare_or_unseen": OOV_ID},
                "values_by_id": [names[int(k)] for k in vocab.values],
                "counts": vocab.counts.tolist(),
            },
        )
    feature_names = schema.sparse + [mv.name for mv in schema.multi_valued]
    manifest = {
        "dataset": schema.name,
        "dense_names": schema.dense,
        "sparse_names": schema.sparse,
        "multi_valued_names": [mv.name for mv in schema.multi_valued],
        "dense_transform": "log1p(max(x, 0)), missing -> 0"
        if schema.dense_transform == "log1p"
        else "none, missing -> 0",
        "reserved_ids": {"missing": MISSING_ID, "rare_or_unseen": OOV_ID, "first_value": FIRST_VALUE_ID},
        "num_embeddings": [vocabs[f][0].num_rows for f in feature_names],
        "days": {
            d: {k: r[k] for k in ("rows", "skipped_lines", "source", "files")} for d, r in records.items()
        },
        "skipped_lines": 0,
        "options": {
            "schema": os.path.basename(schema_path),
            "vocab_days": format_days(vocab_days),
            "max_rows_per_table": schema.max_rows_per_table,
            "timestamp": schema.timestamp,
            "label": schema.label_rule or schema.label_column,
        },
        "ctr_per_day": {
            str(d): float(labels[day_of == d].mean()) if (day_of == d).any() else math.nan for d in days
        },
    }
    write_manifest(output, manifest)
    return manifest


def _vocab(keys: np.ndarray, max_rows: int) -> FieldVocab:
    return FieldVocab.build(*value_counts(keys), max_rows)
