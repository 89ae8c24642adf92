"""One stand-alone training of a NASRec search (a top-k subnet, or a ranking subnet).

The shared job runner calls :func:`run_named_job` for a job of ``candidates.json``: the
subnet's architecture is trained from scratch on the train days with the ``retrain``
recipe (ranking runs capped at ``ranking_train_steps``) and evaluated on the validation day.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from recsearch.search.nasrec.config import NASRecConfig
from recsearch.train.trainer import train
from recsearch.utils.fileio import read_json

CANDIDATES = "candidates.json"


def run_named_job(config: NASRecConfig, data: Any, search_dir: str, name: str, progress: bool) -> None:
    candidates = read_json(f"{search_dir}/{CANDIDATES}")
    if name not in candidates:
        raise ValueError(f"{search_dir}/{CANDIDATES} has no job {name!r}; its jobs: {', '.join(candidates)}")
    recipe = config.retrain
    if name.startswith("rank_") and config.ranking_train_steps:
        recipe = dataclasses.replace(recipe, max_steps=config.ranking_train_steps)
    run_dir = f"{search_dir}/retrain/{name}"
    train(
        candidates[name]["arch"], data.root, data.train_days, data.val_day, run_dir, recipe, progress=progress
    )
