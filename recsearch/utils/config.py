"""Typed job configs: dataclasses validated at construction, YAML presets, ``key=value`` overrides.

Every job config (training, each search method) is a dataclass deriving from
:class:`Config`. Its fields are declared with :func:`setting`, which carries the
help text and the allowed range; ``Config.__post_init__`` checks every field's type
and range, so a bad value fails before any work starts (torchtitan's job config).

Values come, in increasing precedence, from the dataclass defaults, a named preset
(``configs/<kind>/<name>.yaml``), a ``--config`` YAML file, and ``key=value``
overrides (nested: ``key.sub=value``), parsed as YAML scalars with the field's type
in mind: ``1e-3`` is a float, ``true`` a bool, ``[64, 32]`` or ``64,32`` a list.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Job(Config):
    ...     lr: float = setting(0.1, doc="learning rate", gt=0)
    ...     hidden: list[int] = setting(factory=lambda: [8], doc="widths", ge=1)
    >>> load_config(Job, overrides=["lr=1e-3", "hidden=16,4"])
    Job(lr=0.001, hidden=[16, 4])
    >>> load_config(Job, overrides=["lr=0"])
    Traceback (most recent call last):
    ...
    ValueError: Job.lr must be > 0, got 0.0
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")
_BOUNDS = {
    "ge": (">=", lambda v, b: v >= b),
    "gt": (">", lambda v, b: v > b),
    "le": ("<=", lambda v, b: v <= b),
}


def setting(
    default: Any = MISSING,
    *,
    doc: str,
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: Iterable[Any] | None = None,
) -> Any:
    """A config field with its help text and allowed values (numbers: bounds; lists: per item)."""
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "choices": tuple(choices) if choices else None}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class Config:
    """Base of every job config: each field's type and declared range are checked on creation."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _check_type(self, f.name, getattr(self, f.name), hints[f.name])
            setattr(self, f.name, value)
            _check_range(self, f, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def defaults(self) -> dict[str, Any]:
        """Every field's built-in default, as ``to_dict`` writes values (nested configs too)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                continue
            out[f.name] = value.to_dict() if isinstance(value, Config) else value
        return out

    def fail(self, message: str) -> None:
        """Raise the one-line error of a cross-field check (``Cls: message``)."""
        raise ValueError(f"{type(self).__name__}: {message}")


def _where(obj: Any, name: str) -> str:
    return f"{type(obj).__name__}.{name}"


def _check_type(obj: Any, name: str, value: Any, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _check_type(obj, name, value, next(a for a in args if a is not type(None)))
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{_where(obj, name)} must be a list, got {value!r}")
        return [_check_type(obj, name, v, args[0]) for v in value] if args else list(value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, annotation):  # type: ignore[arg-type]
            raise ValueError(f"{_where(obj, name)} must be a {annotation.__name__}, got {value!r}")  # type: ignore[union-attr]
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and (
        not isinstance(value, annotation) or (annotation is not bool and isinstance(value, bool))
    ):
        raise ValueError(f"{_where(obj, name)} must be {annotation.__name__}, got {value!r}")
    return value


def _check_range(obj: Any, f: dataclasses.Field, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        for key, (sign, ok) in _BOUNDS.items():
            bound = f.metadata.get(key)
            if bound is not None and isinstance(item, int | float) and not ok(item, bound):
                raise ValueError(f"{_where(obj, f.name)} must be {sign} {bound}, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and item not in choices:
            raise ValueError(
                f"{_where(obj, f.name)} must be one of {', '.join(map(str, choices))}; got {item!r}"
            )


def _coerce(cls_name: str, key: str, value: Any, annotation: Any) -> Any:
    """A value read from YAML or the command line, converted toward the field's type."""
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, dict):
            raise ValueError(f"{cls_name}.{key} is a section of keys ({key}.<key>=...), got {value!r}")
        return build_config(annotation, value)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(cls_name, key, value, next(a for a in args if a is not type(None)))
    if origin in (list, tuple):
        if isinstance(value, str):  # 64,32 on the command line
            value = [yaml.safe_load(v) for v in value.split(",") if v.strip()] if value.strip() else []
        elif not isinstance(value, list | tuple):
            value = [value]
        return [_coerce(cls_name, key, v, args[0]) for v in value] if args else list(value)
    if isinstance(value, str) and annotation in (int, float):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string
            number = float(value) if annotation is float else int(value)
        except ValueError:
            raise ValueError(f"{cls_name}.{key} must be {annotation.__name__}, got {value!r}") from None
        return number
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and (
        not isinstance(value, annotation) or (annotation is not bool and isinstance(value, bool))
    ):
        raise ValueError(f"{cls_name}.{key} must be {annotation.__name__}, got {value!r}")
    return value


def build_config(cls: type[C], values: dict[str, Any]) -> C:
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ValueError(f"{cls.__name__} values must be a mapping of keys, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(fields)}")
    kwargs = {k: _coerce(cls.__name__, k, v, hints[k]) for k, v in values.items()}
    return cls(**kwargs)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value")
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p} is set both as a value and as a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            node[parts[-1]] = raw  # e.g. an unbalanced bracket: the type check reports it
    return out


def read_yaml(path: str) -> dict[str, Any]:
    """A YAML mapping from a file; a missing file or malformed YAML is a one-line error."""
    from iopath.common.file_io import g_pathmgr

    if not g_pathmgr.exists(path):
        raise ValueError(f"config file {path} not found")
    if g_pathmgr.isdir(path):
        raise ValueError(f"config file {path} is a directory")
    with g_pathmgr.open(path, "r") as f:
        try:
            loaded = yaml.safe_load(f)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ValueError(f"{path} is not valid YAML{where}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config file is a YAML mapping of keys, got {type(loaded).__name__}")
    return loaded


def config_root() -> Path:
    """The presets folder: ``$RECSEARCH_CONFIGS``, else the repository's ``configs/``."""
    env = os.environ.get("RECSEARCH_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def list_presets(kind: str) -> list[str]:
    """Preset names under ``configs/<kind>/`` (e.g. ``train``, ``search/distdnas``)."""
    folder = config_root() / kind
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def preset_path(kind: str, name: str) -> str:
    path = config_root() / kind / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_presets(kind)) or "none"
        raise ValueError(f"no preset {name!r} for {kind} (known presets: {known})")
    return str(path)


def load_config(
    cls: type[C],
    path: str | None = None,
    overrides: Iterable[str] = (),
    preset: str | None = None,
    preset_kind: str | None = None,
) -> C:
    """A config from the defaults, an optional preset, an optional YAML file, then ``key=value``s."""
    values: dict[str, Any] = {}
    if preset:
        if not preset_kind:
            raise ValueError(f"{cls.__name__} has no presets")
        values = _merge(values, read_yaml(preset_path(preset_kind, preset)))
    if path:
        values = _merge(values, read_yaml(path))
    return build_config(cls, _merge(values, parse_overrides(overrides)))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, section by section (``space.num_blocks=3`` keeps ``space``'s other keys)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the keys a person types as overrides."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing_keys(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """The flattened keys whose values differ, as a short list for an error ("" if none). A key
    that ``old`` lacks and ``new`` has at its value in ``defaults`` is not a difference: it is
    a setting added since ``old`` was written, doing what the code did before it existed.

    Example:
        >>> differing_keys({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 4})
        'b.c, d'
        >>> differing_keys({"a": 1}, {"a": 1, "d": 4}, defaults={"d": 4})
        ''
    """
    a, b, d = flatten(old), flatten(new), flatten(defaults or {})
    added_at_default = {k for k in set(b) - set(a) if k in d and b[k] == d[k]}
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in added_at_default)
    return ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")


def add_config_arguments(parser: Any, kind: str) -> None:
    """``--preset`` (of ``configs/KIND/``), ``--config FILE.yaml`` and ``key=value`` overrides."""
    presets = list_presets(kind)
    parser.add_argument(
        "--preset",
        choices=presets or None,
        default=None,
        help=f"configs/{kind}/NAME.yaml: {', '.join(presets) or 'none'} (default: none, built-in defaults)",
    )
    parser.add_argument("--config", default=None, help="YAML file of config keys (over the preset)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. seed=1")


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple):
        return f"list[{_type_name(args[0])}]" if args else "list"
    return getattr(annotation, "__name__", str(annotation))


def _show(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def config_help(cls: type, prefix: str = "") -> str:
    """Every key of a config class with its type, default, allowed values and help text."""
    lines: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        ann = hints[f.name]
        if dataclasses.is_dataclass(ann) and isinstance(ann, type):
            lines.append(f"  {prefix}{f.name}.*: {f.metadata.get('doc', '')}")
            lines.append(config_help(ann, f"{prefix}{f.name}."))
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        allowed = [f"{s} {f.metadata[k]}" for k, (s, _) in _BOUNDS.items() if f.metadata.get(k) is not None]
        if f.metadata.get("choices"):
            allowed.append("one of " + "|".join(map(str, f.metadata["choices"])))
        rule = f"; {', '.join(allowed)}" if allowed else ""
        lines.append(f"  {prefix}{f.name}={_show(default)}  ({_type_name(ann)}{rule})")
        doc = f.metadata.get("doc", "")
        lines += textwrap.wrap(doc, 100, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)
