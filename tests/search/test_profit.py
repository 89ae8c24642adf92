"""PROFIT: the CP sum over all crosses, exact top-N selection, the cross op, the search."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from recsearch.models.builder import build_model
from recsearch.ops.cross import DenseBuckets, FieldCross
from recsearch.search.profit.config import ProfitConfig
from recsearch.search.profit.cp import cp_cross_sum, full_cross_sum
from recsearch.search.profit.selection import exhaustive_top, random_crosses, top_crosses
from recsearch.search.profit.to_arch import arch_from_crosses
from tests.conftest import run_recsearch
from tests.search.conftest import killed_then_resumed, tiny_search_args


def _enumerated(
    fields: torch.Tensor, weight: Callable[[tuple[int, ...]], torch.Tensor], order: int
) -> torch.Tensor:
    total = torch.zeros(fields.shape[0], fields.shape[2], dtype=fields.dtype)
    for c in itertools.combinations(range(fields.shape[1]), order):
        prod = fields[:, c[0]]
        for i in c[1:]:
            prod = prod * fields[:, i]
        total = total + weight(c) * prod
    return total


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_cp_sum_over_all_crosses_equals_enumeration(order: int) -> None:
    g = torch.Generator().manual_seed(order)
    fields = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    beta = torch.randn(3, 7, generator=g, dtype=torch.float64)
    want = _enumerated(fields, lambda c: beta[:, list(c)].prod(dim=1).sum(), order)
    assert torch.allclose(cp_cross_sum(fields, beta, order), want, atol=1e-9)
    if order <= 3:
        free = torch.randn([7] * order, generator=g, dtype=torch.float64)
        assert torch.allclose(
            full_cross_sum(fields, free, order), _enumerated(fields, lambda c: free[c], order)
        )


@pytest.mark.parametrize("seed", range(6))
def test_branch_and_bound_selection_equals_exhaustive_ranking(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, r = 11, 1 + seed % 3
    beta = rng.normal(size=(r, m)) * (rng.random(m) < 0.5 + 0.5 * (seed % 2))  # some fields zeroed
    beta[:, rng.integers(m)] *= 4  # one dominant field
    for order in (1, 2, 3, 4):
        for k in (1, 5, 17):
            got, stats = top_crosses(beta, order, k)
            want = exhaustive_top(beta, order, k)
            assert [c for c, _ in got] == [c for c, _ in want], (order, k)
            assert np.allclose([w for _, w in got], [w for _, w in want]) and stats["exact"]
    # it prunes: a skewed beta ranks the top triples of 30 fields without scoring all 4,060
    skewed = np.exp(rng.normal(size=(2, 30)) * 2)
    got, stats = top_crosses(skewed, 3, 5)
    assert [c for c, _ in got] == [c for c, _ in exhaustive_top(skewed, 3, 5)]
    assert stats["nodes"] < math.comb(30, 2)
    capped, stats = top_crosses(skewed, 3, 5, max_nodes=2)
    assert not stats["exact"] and len(capped) <= 5


def test_random_crosses_are_distinct_sorted_and_seeded() -> None:
    a = random_crosses(np.random.default_rng(1), 10, 3, 20)
    assert len(set(a)) == 20 and all(list(c) == sorted(set(c)) for c in a)
    assert a == random_crosses(np.random.default_rng(1), 10, 3, 20)


def test_field_cross_and_dense_buckets_build_from_names_trace_and_script() -> None:
    config = ProfitConfig(emb_dim=8, dense_buckets=16, head_hidden=[8])
    names = ["cat_0", "cat_1", "cat_2"]
    crosses = {1: [("cat_1",)], 2: [("cat_0", "cat_2"), ("cat_1", "int_1")], 3: [("cat_0", "cat_1", "int_0")]}
    spec = arch_from_crosses(crosses, config, ["int_0", "int_1"], name="t")
    model = build_model(spec, names, [5, 6, 7], 2, dense_names=["int_0", "int_1"])
    # the order-2 block multiplies the named fields: categorical 0 and 2, categorical 1 and numeric 1
    op = model.interaction.order_2
    assert op.index.tolist() == [[0, 2], [1, 4]]
    sparse = torch.randn(4, 5, 8)
    out = op(torch.zeros(4, 0), sparse)
    assert torch.allclose(out[:, 1], sparse[:, 1] * sparse[:, 4])
    torch.jit.script(FieldCross(num_fields=3, emb_dim=2, field_names=["a", "b", "c"], crosses=[["a", "b"]]))
    torch.jit.script(DenseBuckets(dense_in=2, dim_out=4, buckets=8))
    buckets = DenseBuckets(dense_in=1, dim_out=2, buckets=8)
    ids = [0.0, 0.9, 1.0, 1.5, 2.0, 100.0]  # floor(v^2): 0, 0, 1, 2, 4, capped at 7
    rows = buckets(torch.tensor(ids).unsqueeze(1), torch.zeros(6, 1, 2))[:, 0]
    table = buckets.table.weight
    assert all(torch.equal(rows[i], table[j]) for i, j in enumerate([0, 0, 1, 2, 4, 7]))
    with pytest.raises(ValueError, match="unknown field"):
        FieldCross(num_fields=2, emb_dim=2, field_names=["a", "b"], crosses=[["a", "z"]])


@pytest.mark.integration
def test_progressive_search_freezes_lower_orders_and_names_its_crosses(
    searched: Callable[[str], Path], shards: Path
) -> None:
    out = searched("profit")
    record = json.loads((out / "search.json").read_text())
    f = record["findings"]
    names = f["fields"]
    assert names[:26] == [f"cat_{i}" for i in range(26)] and names[26:] == [f"int_{i}" for i in range(13)]
    config = ProfitConfig(**{k: v for k, v in record["config"].items() if k != "retrain"})
    for o in f["orders"]:
        assert len(o["crosses"]) == config.n_keep(o["order"]) and o["selection"]["exact"]
        assert all(len(c["fields"]) == o["order"] and set(c["fields"]) <= set(names) for c in o["crosses"])
        weights = [abs(c["weight"]) for c in o["crosses"]]
        assert weights == sorted(weights, reverse=True)
    assert {"order_1", "order_2", "order_3", "retrain"} <= set(record["phases"])
    w = [json.loads((out / f"order_{o}" / "weights.json").read_text())["weights"] for o in (1, 2, 3)]
    # order 1's weights are frozen after its phase; order 3's do not move before its own
    assert w[0][0] == w[1][0] == w[2][0]
    assert w[1][1] == w[2][1]
    assert w[0][2] == w[1][2] != w[2][2] and w[0][1] != w[1][1]
    spec = json.loads((out / "arch.json").read_text())
    crosses = {b["name"]: b["args"]["crosses"] for b in spec["blocks"] if b["op"] == "field_cross"}
    assert crosses["order_2"] == [c["fields"] for c in f["orders"][1]["crosses"]]
    assert len(f["pair_weights"]) == len(names) and f["retrain"]["auc"] > 0.55


@pytest.mark.integration
def test_modes_and_a_killed_search_resumes_to_the_same_crosses(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    reference = json.loads((searched("profit") / "arch.json").read_text())
    args = tiny_search_args("profit", shards)
    # phase 1 saves 10 checkpoints: the 12th is inside order 2, which resumes from its own
    got = killed_then_resumed(args, tmp_path / "killed", "checkpoint-saved:12", "checkpoint_every=10")
    assert got["blocks"] == reference["blocks"]
    for mode in ("one-step", "full-space", "random"):
        out = tmp_path / mode
        run_recsearch(*args, "--out", str(out), f"mode={mode}", "do_retrain=false")
        f = json.loads((out / "search.json").read_text())["findings"]
        assert f["mode"] == mode and [len(o["crosses"]) for o in f["orders"]] == [6, 4, 2]
    # random crosses are seeded: the same seed draws the same crosses
    again = tmp_path / "random_again"
    run_recsearch(*args, "--out", str(again), "mode=random", "do_retrain=false")
    assert json.loads((again / "arch.json").read_text()) == json.loads(
        (tmp_path / "random" / "arch.json").read_text()
    )


@pytest.mark.integration
def test_recovery_of_planted_crosses_is_scored_against_chance(
    searched: Callable[[str], Path], raw_days: Path
) -> None:
    """The tiny search's crosses scored against the teacher's: precision@k (k = planted), recall of
    the kept, chance beside them. (At this scale, 6k-row days, the search is not above chance;
    on 300k-row days it is: docs/results.md.)"""
    from recsearch.search.profit.experiments import planted, recovery

    truth = planted(raw_days)
    teacher = json.loads((raw_days / "truth" / "teacher.json").read_text())
    assert {tuple(sorted(f"cat_{i}" for i in p)) for p in teacher["pairs"]} == truth[2]
    f = json.loads((searched("profit") / "search.json").read_text())["findings"]
    rec = recovery(f["orders"], truth, len(f["fields"]))
    assert set(rec) == {"2", "3"}
    for order, r in rec.items():
        o = int(order)
        assert r["planted"] == len(truth[o]) and r["kept"] == len(f["orders"][o - 1]["crosses"])
        assert r["chance_precision"] == pytest.approx(r["planted"] / math.comb(39, o))
        assert 0 <= r["precision_at_k"] <= 1 and 0 <= r["recall_kept"] <= 1
        kept = {tuple(sorted(c["fields"])) for c in f["orders"][o - 1]["crosses"]}
        assert r["recall_kept"] == pytest.approx(len(kept & truth[o]) / r["planted"])
