"""Typed job configs: dataclasses loaded from YAML (``yaml.safe_load``) with CLI overrides.

Overrides are ``key=value`` (nested: ``key.sub=value``); values are parsed as YAML
scalars and checked against the field's type, so a typo or a wrong type is a
clear error instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

import yaml
from iopath.common.file_io import g_pathmgr

C = TypeVar("C")


def _coerce(cls_name: str, key: str, value: Any, annotation: Any) -> Any:
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, dict):
            raise ValueError(f"{cls_name}.{key} is a section of keys, got {value!r}")
        return build_config(annotation, value)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(cls_name, key, value, inner[0])
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            value = [value]
        return [_coerce(cls_name, key, v, args[0]) for v in value] if args else list(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (
        annotation in (int, float, str, bool)
        and not isinstance(value, annotation)
        or (annotation is int and isinstance(value, bool))
    ):
        raise ValueError(f"{cls_name}.{key} must be {annotation.__name__}, got {value!r}")
    return value


def build_config(cls: type[C], values: dict[str, Any]) -> C:
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(fields)}")
    kwargs = {k: _coerce(cls.__name__, k, v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def load_config(cls: type[C], path: str | None, overrides: list[str]) -> C:
    """A config from an optional YAML file, then ``key=value`` overrides."""
    values: dict[str, Any] = {}
    if path:
        if not g_pathmgr.exists(path):
            raise ValueError(f"config file {path} not found")
        with g_pathmgr.open(path, "r") as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config file is a YAML mapping")
        values.update(loaded)
    return build_config(cls, _merge(values, parse_overrides(overrides)))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, section by section (``space.num_blocks=3`` keeps ``space``'s other keys)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
