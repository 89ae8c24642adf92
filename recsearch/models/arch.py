"""The architecture spec: one versioned JSON format for every model and search result.

An architecture is embedding tables (per-table dims allowed: ``embedding.dims``; or
frequency blocks of a table's ids, each its own table and dim: ``embedding.blocks``) + a
graph of blocks of registered operators + an output head. Block references:

* ``input.dense``: the dense features (B x D);
* ``input.sparse``: the pooled embeddings, projected to ``embedding.dim`` (B x N x E);
* ``<block name>``: that block's output (dense B x D_out or sparse B x N_out x E_out).

A block concatenates its ``dense`` references (sparse ones flattened: a
sparse-to-dense merger) and its ``sparse`` references along the field axis
(dense ones linearly mapped to one field: a dense-to-sparse merger). The head is
an MLP over its ``inputs`` plus an optional linear term over ``linear_inputs``,
giving one logit.

Example spec::

    {"schema_version": 1, "name": "tiny",
     "embedding": {"dim": 16},
     "blocks": [{"name": "dot", "op": "dot_product", "dense": ["input.dense"], "sparse": ["input.sparse"]}],
     "head": {"inputs": ["dot"], "hidden": [64]}}
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from iopath.common.file_io import g_pathmgr

from recsearch.ops import list_ops, op_spec
from recsearch.utils.fileio import write_json

SCHEMA_VERSION = 1
INPUT_DENSE = "input.dense"
INPUT_SPARSE = "input.sparse"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_TOP_KEYS = {"schema_version", "name", "embedding", "tables", "blocks", "head", "meta"}
_BLOCK_KEYS = {"name", "op", "dense", "sparse", "args", "dense_out", "fields_out", "dim_out"}
_HEAD_KEYS = {"inputs", "hidden", "linear_inputs"}
_EMB_KEYS = {"dim", "dims", "blocks"}
_TABLE_KEYS = {"feature", "num_embeddings", "dim"}
_BLOCKS_KEYS = {"starts", "dims"}


class ArchError(ValueError):
    """An architecture spec that cannot be built; the message says what to change."""


def _check_keys(where: str, d: Any, allowed: set[str], required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    if not isinstance(d, dict):
        raise ArchError(f"{where} must be a JSON object")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ArchError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(d))
    if missing:
        raise ArchError(f"{where}: missing key(s) {missing}")


def _positive_int(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArchError(f"{where} must be a positive integer, got {value!r}")


def _refs(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ArchError(f"{where} must be a list of block names, got {value!r}")
    return value


def _check_arg(where: str, value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        if not value:
            raise ArchError(f"{where}: an empty name")
        return
    if isinstance(value, list):
        for item in value:
            _check_arg(where, item)
        return
    _positive_int(where, value)


def _check_args(where: str, args: Any) -> None:
    """Op arguments: flags are booleans, strings are feature names (e.g. the fields of a
    ``field_cross``), every number is a size or count; lists nest these."""
    if not isinstance(args, dict):
        raise ArchError(f"{where}.args must be a JSON object, got {args!r}")
    for key, value in args.items():
        _check_arg(f"{where}.args.{key}", value)


def _check_blocks(blocks: Any, dims: dict[str, Any]) -> None:
    """``embedding.blocks``: per feature, frequency blocks of its id range (``starts``: the
    first id of each, from 0, increasing) and each block's table dim (0: no table)."""
    if not isinstance(blocks, dict):
        raise ArchError(f"arch.embedding.blocks must map feature names to blocks, got {blocks!r}")
    for feature, b in blocks.items():
        where = f"arch.embedding.blocks.{feature}"
        _check_keys(where, b, _BLOCKS_KEYS, _BLOCKS_KEYS)
        starts, bdims = b["starts"], b["dims"]
        ints = isinstance(starts, list) and isinstance(bdims, list)
        if not ints or not all(isinstance(x, int) and not isinstance(x, bool) for x in starts + bdims):
            raise ArchError(f"{where}: starts and dims must be lists of integers")
        if not starts or starts[0] != 0 or any(a >= b for a, b in zip(starts, starts[1:], strict=False)):
            raise ArchError(f"{where}.starts must start at 0 and increase, got {starts}")
        if len(bdims) != len(starts) or any(d < 0 for d in bdims):
            raise ArchError(f"{where}.dims must give one dim >= 0 per block, got {bdims}")
        if feature in dims:
            raise ArchError(f"{where}: {feature} is also in arch.embedding.dims; give it one or the other")


def validate(spec: dict[str, Any]) -> dict[str, Any]:
    """Check a spec's version, keys, op names and references; returns a normalized copy."""
    _check_keys("arch", spec, _TOP_KEYS, {"schema_version", "blocks", "head"})
    version = spec["schema_version"]
    if version != SCHEMA_VERSION:
        raise ArchError(
            f"arch schema_version {version!r} is not supported "
            f"(this recsearch reads version {SCHEMA_VERSION})"
        )
    spec = copy.deepcopy(spec)
    spec.setdefault("name", "model")
    spec.setdefault("embedding", {"dim": 16})
    _check_keys("arch.embedding", spec["embedding"], _EMB_KEYS, {"dim"})
    _positive_int("arch.embedding.dim", spec["embedding"]["dim"])
    dims = spec["embedding"].get("dims", {})
    if not isinstance(dims, dict):
        raise ArchError(f"arch.embedding.dims must map feature names to dims, got {dims!r}")
    for feature, dim in dims.items():
        _positive_int(f"arch.embedding.dims.{feature}", dim)
    _check_blocks(spec["embedding"].get("blocks", {}), dims)
    for t in spec.get("tables", []):
        _check_keys("arch.tables[]", t, _TABLE_KEYS | {"blocks"}, _TABLE_KEYS)
        _positive_int(f"arch.tables[{t['feature']}].num_embeddings", t["num_embeddings"])
        if "blocks" in t and t["dim"] == 0:  # every block of the field pruned: the field is dropped
            continue
        _positive_int(f"arch.tables[{t['feature']}].dim", t["dim"])
    defined: dict[str, str] = {INPUT_DENSE: "dense", INPUT_SPARSE: "sparse"}
    if not isinstance(spec["blocks"], list):
        raise ArchError("arch.blocks must be a list")
    for i, block in enumerate(spec["blocks"]):
        where = f"arch.blocks[{i}]"
        _check_keys(where, block, _BLOCK_KEYS, {"name", "op"})
        name = block["name"]
        if not isinstance(name, str) or not _NAME_RE.match(name) or name in defined:
            raise ArchError(f"{where}: block name {name!r} must be a new lowercase identifier")
        if block["op"] not in list_ops():
            raise ArchError(
                f"{where} ({name}): unknown op {block['op']!r}; known ops: {', '.join(list_ops())}"
            )
        block.setdefault("dense", [])
        block.setdefault("sparse", [])
        block.setdefault("args", {})
        for key in ("dense_out", "fields_out", "dim_out"):
            if key in block:
                _positive_int(f"{where} ({name}).{key}", block[key])
        _check_args(f"{where} ({name})", block["args"])
        for ref in _refs(f"{where} ({name}).dense", block["dense"]) + _refs(
            f"{where} ({name}).sparse", block["sparse"]
        ):
            if ref not in defined:
                raise ArchError(
                    f"{where} ({name}): reference {ref!r} is not defined before this block "
                    f"(defined: {', '.join(defined)})"
                )
        spec_ = op_spec(block["op"])
        if spec_.output == "sparse" and spec_.reads != "dense" and not block["sparse"]:
            raise ArchError(f"{where} ({name}): sparse-output op {block['op']!r} needs 'sparse' inputs")
        if spec_.reads == "dense" and not block["dense"]:
            raise ArchError(f"{where} ({name}): op {block['op']!r} reads 'dense' inputs; give some")
        if not block["dense"] and not block["sparse"]:
            raise ArchError(f"{where} ({name}): a block needs 'dense' or 'sparse' inputs")
        defined[name] = op_spec(block["op"]).output
    head = spec["head"]
    _check_keys("arch.head", head, _HEAD_KEYS, {"inputs"})
    head.setdefault("hidden", [])
    head.setdefault("linear_inputs", [])
    if not isinstance(head["hidden"], list):
        raise ArchError(f"arch.head.hidden must be a list of layer widths, got {head['hidden']!r}")
    for width in head["hidden"]:
        _positive_int("arch.head.hidden[]", width)
    for ref in _refs("arch.head.inputs", head["inputs"]) + _refs(
        "arch.head.linear_inputs", head["linear_inputs"]
    ):
        if ref not in defined:
            raise ArchError(f"arch.head: reference {ref!r} is not defined (defined: {', '.join(defined)})")
    if not head["inputs"]:
        raise ArchError("arch.head.inputs must name at least one input")
    return spec


def load_arch(path: str) -> dict[str, Any]:
    """Read and validate an architecture JSON file."""
    if not g_pathmgr.exists(path):
        raise ArchError(f"arch file {path} not found")
    with g_pathmgr.open(path, "r") as f:
        try:
            spec = json.load(f)
        except json.JSONDecodeError as e:
            raise ArchError(f"{path} is not valid JSON: {e}") from None
    try:
        return validate(spec)
    except ArchError as e:
        raise ArchError(f"{path}: {e}") from None


def save_arch(path: str, spec: dict[str, Any]) -> None:
    write_json(path, validate(spec))
