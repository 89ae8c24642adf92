"""The joint search: an interaction search, then an embedding-size search on its graph."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from recsearch.models.arch import save_arch
from recsearch.models.zoo import create_arch
from recsearch.search.common import base_model_arch
from recsearch.search.joint.config import JointConfig
from recsearch.search.registry import get_method
from tests.conftest import run_recsearch


@pytest.mark.integration
def test_sizes_are_searched_on_the_found_graph_and_shipped_as_one_arch(
    searched: Callable[[str], Path],
) -> None:
    out = searched("joint")
    graph = json.loads((out / "interaction" / "arch.json").read_text())
    joint = json.loads((out / "arch.json").read_text())
    # the found graph, unchanged, over mixed-dimension tables at the graph's width
    assert joint["blocks"] == graph["blocks"] and joint["head"] == graph["head"]
    width = graph["embedding"]["dim"]
    assert joint["embedding"]["dim"] == width and set(joint["embedding"]) & {"dims", "blocks"}
    dims = [d for b in joint["embedding"].get("blocks", {}).values() for d in b["dims"]]
    assert dims and max(dims) <= width and min(dims) < width
    sizes_request = json.loads((out / "sizes" / "request.json").read_text())
    key_model, key_width = get_method("dnis").base_keys  # the tiny preset's sizes method
    assert sizes_request["config"][key_model] == str(out / "interaction" / "arch.json")
    assert sizes_request["config"][key_width] == width
    record = json.loads((out / "search.json").read_text())
    f = record["findings"]
    assert f["interaction"]["method"] == "distdnas" and f["sizes"]["method"] == "dnis"
    assert record["result"]["embedding_params"] < f["interaction"]["result"]["embedding_params"]
    assert set(record["phases"]) >= {"interaction", "sizes"}
    again = run_recsearch("search", "joint", *_where(record), "--out", str(out), "--preset", "tiny")
    assert "already complete" in again.stdout


def _where(record: dict) -> list[str]:
    days = ",".join(map(str, record["train_days"]))
    return ["--data", record["data"], "--train-days", days, "--val-day", str(record["val_day"])]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"sizes": "distdnas"}, "sizes=distdnas does not search the embedding sizes of a base model"),
        ({"interaction": "joint"}, "cannot be one of its own stages"),
        ({"interaction": "nope"}, "unknown search method 'nope'"),
        ({"sizes_preset": "huge"}, "no preset 'huge'"),
        ({"interaction_overrides": ["space.num_blocks=0"]}, "num_blocks"),
    ],
)
def test_bad_stages_fail_before_any_work(overrides: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        JointConfig(**overrides)


def test_an_arch_file_is_a_base_model_at_its_own_width(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    spec = create_arch("dcn_v2", emb_dim=8)
    spec["embedding"]["dims"] = {"cat_0": 4}
    save_arch(str(path), spec)
    base = base_model_arch(str(path), 8, [16])
    assert base["embedding"] == {"dim": 8} and base["blocks"] == spec["blocks"]
    assert base["head"] == spec["head"]  # hidden is for zoo models
    with pytest.raises(ValueError, match="interacts at dim 8, not 16: set the width to 8"):
        base_model_arch(str(path), 16, [])
