"""The search-method registry: each method registers itself by name (timm's ``register_model``).

A method lives in ``recsearch/search/<name>/``; its ``__init__.py`` calls
:func:`register_method` with a name, a one-line summary, its config dataclass and
the dotted path of its ``run(config, data, out)``. The CLI, the contract test and
the comparison tools find methods here, never by name. Importing a method's package
must stay cheap (no torch): ``recsearch --help`` and ``recsearch search ls`` import
every package, and the run function is imported only when a search runs.

Example:
    >>> "distdnas" in list_methods()
    True
    >>> get_method("distdnas").summary.split(":")[0]
    'DistDNAS'
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recsearch.utils.config import list_presets


@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets a config key (e.g. ``--mode one-shot`` -> ``mode=one-shot``)."""

    flag: str
    key: str
    help: str
    switch: bool = False  # a flag without a value that sets the key to true


@dataclass(frozen=True)
class SearchMethod:
    """A registered search method.

    Attributes:
        name: the subcommand (``recsearch search <name>``) and the presets folder
            (``configs/search/<name>/``).
        summary: one line for ``recsearch search ls``.
        config: the method's config dataclass (a ``recsearch.train.config.BaseConfig``).
        entry: ``"module:function"`` of ``run(config, data, out) -> SearchResult``.
        description: the ``--help`` text: what the method does, from which paper.
        job: ``"module:function"`` running one of the jobs the method fans out,
            ``job(config, data, search_dir, name, progress)`` (``recsearch.search.job``).
        flags: extra flags mapped onto config keys (old spellings kept working).
        stages: ``"module:function"`` adders of extra top-level stages (argparse).
        base_keys: a method that searches the embedding sizes of a base model names the two
            config keys that set that base (a zoo name or an arch JSON file) and its
            interaction width, so a pipeline can hand it another method's find.
        random_arch: ``"module:function"`` of ``random_arch(config, found, info, rng) -> spec``:
            a random architecture of the method's own space, of about the found one's cost
            (``info``: the data's ``ShardInfo``); the control a comparison measures a find against.
    """

    name: str
    summary: str
    config: type
    entry: str
    description: str = ""
    job: str = ""
    flags: tuple[Flag, ...] = ()
    stages: tuple[str, ...] = ()
    base_keys: tuple[str, str] | None = None
    random_arch: str = ""

    @property
    def preset_kind(self) -> str:
        return f"search/{self.name}"

    @property
    def presets(self) -> list[str]:
        return list_presets(self.preset_kind)

    def run(self, config: Any, data: Any, out: Any) -> Any:
        return resolve(self.entry)(config, data, out)

    def run_job(self, config: Any, data: Any, search_dir: str, name: str, progress: bool = True) -> Any:
        if not self.job:
            raise ValueError(f"search method {self.name!r} runs no separate jobs")
        return resolve(self.job)(config, data, search_dir, name, progress)


_METHODS: dict[str, SearchMethod] = {}
_discovered = False


def register_method(method: SearchMethod) -> SearchMethod:
    """Add a method to the registry (called from its package's ``__init__``)."""
    old = _METHODS.get(method.name)
    if old is not None and old != method:
        raise ValueError(f"search method {method.name!r} is registered twice")
    _METHODS[method.name] = method
    return method


def _discover() -> None:
    """Import every method package under ``recsearch/search/`` (each registers itself)."""
    global _discovered
    if _discovered:
        return
    import recsearch.search as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg:
            importlib.import_module(f"{pkg.__name__}.{info.name}")
    _discovered = True


def list_methods() -> list[str]:
    """Names of the registered search methods."""
    _discover()
    return sorted(_METHODS)


def get_method(name: str) -> SearchMethod:
    _discover()
    if name not in _METHODS:
        raise ValueError(f"unknown search method {name!r}; known methods: {', '.join(list_methods())}")
    return _METHODS[name]


def resolve(path: str) -> Callable[..., Any]:
    """The function named ``"package.module:function"``."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
