"""The comparison's config: which methods and baselines, on which days, with how many seeds.

Presets live in ``configs/compare/`` (``tiny``: the quickstart; ``small``: the results in
docs/results.md). Every search runs with its own ``search_preset`` and a seed from
``seed, seed+1, ...``; every model, found or hand-crafted, is then trained with one
recipe (``train_preset``, the same seed) on the train days and scored on the held-out day.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from recsearch.utils.config import Config, setting

SYNTH_PRESETS = ("tiny", "small", "medium")


@dataclass
class CompareConfig(Config):
    """One comparison (``recsearch compare``)."""

    methods: list[str] = setting(
        factory=list, doc="search methods to compare (empty: every registered one, `recsearch search ls`)"
    )
    baselines: list[str] = setting(
        factory=lambda: ["lr", "deepfm", "dlrm", "dcn_v2"], doc="zoo models trained beside the found ones"
    )
    reference: str = setting("dlrm", doc="the baseline relative NE is measured against")
    target_baseline: str = setting(
        "dcn_v2", doc="the baseline whose FLOPs bound the target (a found model within flops_budget of it)"
    )
    flops_budget: float = setting(
        0.4, doc="target: at most this fraction of target_baseline's FLOPs", gt=0, le=1
    )
    seeds: int = setting(
        1, doc="searches per method (seeds seed, seed+1, ...): the spread and stability", ge=1
    )
    seed: int = setting(0, doc="the first seed (search, training and the planted data)", ge=0)
    search_preset: str = setting("small", doc="every method's preset (configs/search/<method>/)")
    train_preset: str = setting("small", doc="the one training recipe of every model (configs/train/)")
    days: str = setting(
        "0-4",
        doc="days to use: the last is held out for the final scores, the one before it is the "
        "searches' validation day, the rest are train days",
    )
    random_archs: int = setting(
        0, doc="random architectures of each method's own space, at about its find's cost, trained with "
        "the same recipe: the find's margin over chance (methods that register random_arch)", ge=0,
    )  # fmt: skip
    latency_model: str = setting(
        "", doc="the latency model that predicts each model's latency in the report (from `recsearch "
        "profile --fit-latency`; empty: fit one on the zoo's graphs on this machine)",
    )  # fmt: skip
    rows_per_day: int = setting(100_000, doc="planted data (no --data): rows per day", ge=1)
    synth_preset: str = setting("tiny", doc="planted data (no --data): synth preset", choices=SYNTH_PRESETS)

    def __post_init__(self) -> None:
        super().__post_init__()
        from recsearch.data.criteo import parse_days
        from recsearch.models.zoo import list_models
        from recsearch.search.registry import get_method, list_methods
        from recsearch.utils.config import list_presets

        if len(self.day_list) < 3:
            self.fail(f"days={self.days} names {len(parse_days(self.days))} day(s); need 3 or more "
                      "(train, validation, held out)")  # fmt: skip
        for name in self.methods:
            if name not in list_methods():
                self.fail(f"methods: unknown method {name!r}; known: {', '.join(list_methods())}")
        for name in self.method_list:
            if self.search_preset not in get_method(name).presets:
                self.fail(
                    f"search_preset={self.search_preset}: {name} has presets {get_method(name).presets}"
                )
        if len(set(self.methods)) != len(self.methods) or len(set(self.baselines)) != len(self.baselines):
            self.fail("methods and baselines must not repeat a name")
        for name in self.baselines:
            if name not in list_models():
                self.fail(f"baselines: unknown model {name!r}; known: {', '.join(list_models())}")
        for key in ("reference", "target_baseline"):
            if getattr(self, key) not in self.baselines:
                self.fail(f"{key}={getattr(self, key)} is not among baselines {self.baselines}")
        if self.train_preset not in list_presets("train"):
            self.fail(f"train_preset={self.train_preset}: known presets {list_presets('train')}")
        if self.latency_model and not os.path.exists(self.latency_model):
            self.fail(f"latency_model={self.latency_model}: no such file; write one with "
                      "`recsearch profile --fit-latency FILE`")  # fmt: skip
        if not self.method_list:
            self.fail("no search method is registered")

    @property
    def day_list(self) -> list[int]:
        from recsearch.data.criteo import parse_days

        return parse_days(self.days)

    @property
    def method_list(self) -> list[str]:
        from recsearch.search.registry import list_methods

        return self.methods or list_methods()

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))
