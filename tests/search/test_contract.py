"""The search contract, checked for every registered method (timm's tests over ``list_models``).

Each method's ``tiny`` preset runs end to end through ``recsearch search``; its three
outputs are checked, and its ``arch.json`` trains with ``recsearch train --arch`` and
exports to TorchScript that gives the eager model's outputs, and, exported over raw features,
scores the held-out day's raw log lines as the model scores that day's shards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsearch.models.arch import load_arch
from recsearch.search.contract import SearchData, SearchOutput, SearchResult, run_search
from recsearch.search.registry import SearchMethod, get_method, list_methods, register_method
from recsearch.train.config import BaseConfig
from recsearch.utils.config import list_presets, load_config
from tests.conftest import REPO, assert_export_matches_eager, assert_raw_export_scores_the_day, run_recsearch

METHODS = list_methods()
SEARCH_KEYS = {"method", "preset", "config", "seed", "phases", "result", "findings", "plots", "wall_seconds"}


def test_every_method_is_registered_with_presets_and_a_validated_config() -> None:
    assert "distdnas" in METHODS
    for name in METHODS:
        m = get_method(name)
        assert issubclass(m.config, BaseConfig), name
        assert {"tiny", "small", "paper"} <= set(m.presets), name
        for preset in m.presets:  # every preset loads into the typed config
            config = load_config(m.config, preset=preset, preset_kind=m.preset_kind)
            assert config.seed == 0
        assert (REPO / "recsearch" / "search" / name).is_dir()


@pytest.mark.integration
@pytest.mark.parametrize("method", METHODS)
def test_tiny_preset_runs_the_contract_and_its_arch_trains_and_exports(
    method: str, searched: Callable[[str], Path], shards: Path, raw_days: Path, tmp_path: Path
) -> None:
    out = searched(method)
    record = json.loads((out / "search.json").read_text())
    assert SEARCH_KEYS <= set(record)
    assert record["method"] == method and record["preset"] == "tiny" and record["val_day"] == 2
    assert record["train_days"] == [0, 1] and record["seed"] == 0
    assert record["phases"] and all(v >= 0 for v in record["phases"].values())
    res = record["result"]
    assert res["flops"] > 0 and res["params"] == res["dense_params"] + res["embedding_params"]
    assert res["embedding_bytes"] == 4 * res["embedding_params"]
    spec = load_arch(str(out / "arch.json"))  # schema-valid
    assert spec["name"] == res["name"]
    report = (out / "report.md").read_text()
    for png in record["plots"]:
        assert (out / png).read_bytes()[:4] == b"\x89PNG" and f"({png})" in report
    run = tmp_path / "run"
    run_recsearch(
        "train", "--arch", str(out / "arch.json"), "--data", str(shards), "--train-days", "0-1",
        "--eval-day", "2", "--out", str(run), "--preset", "tiny",
    )  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["auc"] > 0.6
    # the trained model's FLOPs and parameters are what the search reported for its result
    assert metrics["flops"] == pytest.approx(res["flops"]) and metrics["params"] == res["params"]
    run_recsearch("export", "--run", str(run), "--out", str(tmp_path / "m.pt"))
    assert_export_matches_eager(run, tmp_path / "m.pt", tmp_path)
    # served from raw log lines too: the held-out day's lines give the shards' scores
    assert_raw_export_scores_the_day(run, shards, raw_days, 2, tmp_path)


@pytest.mark.integration
def test_a_finished_search_is_kept_and_another_request_is_refused(
    searched: Callable[[str], Path], shards: Path
) -> None:
    out = searched(METHODS[0])
    args = ["search", METHODS[0], "--data", str(shards), "--train-days", "0-1", "--val-day", "2"]
    r = run_recsearch(*args, "--out", str(out), "--preset", "tiny", timeout=120)
    assert "already complete" in r.stdout
    # a request written before some settings existed: those at their defaults are no difference
    path = out / "request.json"
    request = json.loads(path.read_text())
    config = load_config(get_method(METHODS[0]).config, None, [], "tiny", get_method(METHODS[0]).preset_kind)
    defaults = config.defaults()
    at_default = [k for k, v in request["config"].items() if k in defaults and defaults[k] == v]
    assert at_default
    path.write_text(
        json.dumps({**request, "config": {k: v for k, v in request["config"].items() if k not in at_default}})
    )
    r = run_recsearch(*args, "--out", str(out), "--preset", "tiny", timeout=120)
    assert "already complete" in r.stdout
    path.write_text(json.dumps(request))
    r = run_recsearch(*args, "--out", str(out), "--preset", "tiny", "seed=3", "batch_size=64", check=False)
    assert r.returncode == 2
    assert "differs in: config.batch_size, config.seed" in r.stderr and "--restart" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_request_errors_are_one_line(shards: Path, tmp_path: Path) -> None:
    method = METHODS[0]
    base = ["search", method, "--data", str(shards), "--preset", "tiny"]
    file = tmp_path / "file"
    file.write_text("x")
    cases = [
        (["--train-days", "0-1", "--val-day", "1", "--out", str(tmp_path / "a")], "is also a train day"),
        (["--train-days", "0-1", "--val-day", "7", "--out", str(tmp_path / "b")], r"day\(s\) \[7\] not in"),
        (["--train-days", "0-1", "--val-day", "2", "--out", str(file)], "is an existing file"),
        (["--train-days", "0-1", "--val-day", "2", "--out", str(tmp_path / "c"), "batch_size=0"], ">= 1"),
        (["--train-days", "0-1", "--val-day", "2", "--out", str(tmp_path / "d"), "nope=1"], "unknown"),
    ]
    for args, message in cases:
        r = run_recsearch(*base, *args, check=False, timeout=120)
        assert r.returncode == 2, args
        assert re.search(message, r.stderr) and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_help_and_ls_come_from_the_registry_without_torch() -> None:
    code = (
        "import sys, io, contextlib; from recsearch.cli import main; buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try: main(sys.argv[1:])\n"
        "    except SystemExit: pass\n"
        "print(buf.getvalue()); print('TORCH', 'torch' in sys.modules)"
    )
    for args in (["--help"], ["search", "ls"]):
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
        assert time.perf_counter() - start < 20  # a sanity bound only; speed is not asserted here
        assert r.stdout.strip().endswith("TORCH False"), r.stdout[-500:]
        for name in METHODS:
            assert name in r.stdout
    r = subprocess.run([sys.executable, "-c", code, "search", "ls"], capture_output=True, text=True)
    for name in METHODS:
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith(name))
        assert get_method(name).summary in line
        assert ", ".join(get_method(name).presets) in r.stdout


@pytest.mark.parametrize("method", METHODS)
def test_method_help_documents_every_config_key_with_its_default(method: str) -> None:
    import dataclasses

    r = subprocess.run(
        [sys.executable, "-m", "recsearch", "search", method, "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    m = get_method(method)

    def keys(cls: type, prefix: str = "") -> list[str]:
        out, hints = [], typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                out += keys(hints[f.name], f"{prefix}{f.name}.")
            else:
                out.append(f"{prefix}{f.name}")
        return out

    defaults = m.config()
    for key in keys(m.config):
        assert re.search(rf"^  {re.escape(key)}=", r.stdout, re.M), key
    assert f"  seed={defaults.seed}  (int)" in r.stdout
    for preset in list_presets(m.preset_kind):
        assert preset in r.stdout


def test_registry_refuses_a_second_method_of_the_same_name() -> None:
    m = get_method(METHODS[0])
    assert register_method(m) is m  # registering the same method again is harmless
    with pytest.raises(ValueError, match="registered twice"):
        register_method(SearchMethod(name=m.name, summary="other", config=m.config, entry="x:y"))


def test_a_method_plugs_in_through_the_registry(shards: Path, tmp_path: Path) -> None:
    """A minimal method: the contract writes its three outputs with nothing method-specific."""
    from recsearch.models.zoo import create_arch

    def run(config: BaseConfig, data: SearchData, out: SearchOutput) -> SearchResult:
        with out.phase("think"):
            arch = create_arch("fm", emb_dim=8)
        return SearchResult(arch=arch, findings={"seed_seen": config.seed}, report="## found FM")

    sys.modules[__name__].run = run  # type: ignore[attr-defined]
    register_method(
        SearchMethod(name="fm_only", summary="FM, always", config=BaseConfig, entry=f"{__name__}:run")
    )
    try:
        record = run_search("fm_only", str(shards), [0], 2, str(tmp_path / "s"), BaseConfig(seed=5))
    finally:
        from recsearch.search import registry

        registry._METHODS.pop("fm_only")
    assert record["findings"] == {"seed_seen": 5} and record["seed"] == 5 and "think" in record["phases"]
    assert load_arch(str(tmp_path / "s" / "arch.json"))["name"] == "fm"
    assert "## found FM" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("name", [m for m in METHODS if get_method(m).random_arch])
def test_random_arch_is_a_valid_arch_of_about_the_finds_cost(
    name: str, searched: Callable[[str], Path], shards: Path
) -> None:
    """The comparison's control: a random member of the method's space near the find's FLOPs."""
    from recsearch.data.shards import ShardInfo
    from recsearch.models.arch import validate
    from recsearch.profile.counts import interaction_flops
    from recsearch.search.registry import resolve
    from recsearch.utils.config import load_config

    m = get_method(name)
    config: Any = load_config(m.config, None, [], preset="tiny", preset_kind=m.preset_kind)
    info = ShardInfo.load(str(shards))
    fields = info.sparse_names + info.jagged_names
    found = json.loads((searched(name) / "arch.json").read_text())
    emb = int(found["embedding"]["dim"])
    draw = resolve(m.random_arch)
    a = draw(config, found, info, np.random.default_rng(0))
    b = draw(config, found, info, np.random.default_rng(0))
    assert a == b and validate(a) and a != found  # seeded, a valid spec, not the find itself
    shape = (len(info.dense_names), len(fields), emb)
    ratio = interaction_flops(a, *shape, fields, info.dense_names) / interaction_flops(
        found, *shape, fields, info.dense_names
    )
    assert 0.7 <= ratio <= 1.3, ratio
    from recsearch.models.builder import build_model

    model = build_model(a, fields, info.num_embeddings, len(info.dense_names), info.dense_names)
    assert sum(p.numel() for p in model.parameters()) > 0  # it builds on the data: it trains like the find
