"""The joint search's settings: which two methods, with which presets and overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recsearch.train.config import BaseConfig
from recsearch.utils.config import setting


@dataclass
class JointConfig(BaseConfig):
    """A joint search. Each stage trains with its own method's preset; of the keys shared with
    training, only ``seed`` is used here (it seeds both stages)."""

    interaction: str = setting("distdnas", doc="the method that searches the interaction graph")
    interaction_preset: str = setting("small", doc="its preset (configs/search/<interaction>/)")
    interaction_overrides: list[str] = setting(factory=list, doc="its key=value settings, over the preset")
    sizes: str = setting(
        "dnis", doc="the method that then searches per-feature embedding sizes on the found graph"
    )
    sizes_preset: str = setting("small", doc="its preset (configs/search/<sizes>/)")
    sizes_overrides: list[str] = setting(factory=list, doc="its key=value settings, over the preset")

    def __post_init__(self) -> None:
        super().__post_init__()
        from recsearch.search.registry import get_method

        if self.interaction == "joint" or self.sizes == "joint":
            self.fail("a joint search cannot be one of its own stages")
        try:
            sizes = get_method(self.sizes)
            get_method(self.interaction)
            if sizes.base_keys is None:
                self.fail(f"sizes={self.sizes} does not search the embedding sizes of a base model")
            self.stage_config("interaction")  # bad presets or overrides fail now, not after stage 1
            self.stage_config("sizes")
        except ValueError as e:
            if str(e).startswith(type(self).__name__):
                raise
            self.fail(str(e))

    def stage_config(self, stage: str, extra: list[str] | None = None) -> Any:
        """The config of stage ``interaction`` or ``sizes``: its preset, its overrides, ``extra``
        and the seed."""
        from recsearch.search.registry import get_method
        from recsearch.utils.config import load_config

        m = get_method(getattr(self, stage))
        preset = getattr(self, f"{stage}_preset")
        overrides = [*getattr(self, f"{stage}_overrides"), *(extra or []), f"seed={self.seed}"]
        return load_config(m.config, None, overrides, preset, m.preset_kind)
