"""NASRec: elastic ops equal narrow ones, sampling limits, mutation validity, evolution, resume."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import build_model
from recsearch.search.nasrec.config import NASRecConfig, NASRecSpace
from recsearch.search.nasrec.evolution import Evolution, EvolutionState, mutation_count
from recsearch.search.nasrec.space import (
    Block,
    canonical,
    check,
    decode,
    encode,
    full_path,
    live_blocks,
    mutate,
    sample,
)
from recsearch.search.nasrec.supernet import (
    ElasticAttention,
    ElasticDot,
    ElasticEmbedFC,
    ElasticFC,
    ElasticPair,
    Supernet,
    dot_tokens,
)
from recsearch.search.nasrec.to_arch import arch_from_genotype
from tests.search.conftest import killed_then_resumed, tiny_search_args

SPACE = NASRecSpace(num_blocks=4, dense_dims=[8, 16, 32], sparse_fields=[4, 8], emb_dim=8, ffn_dim=16)
NAMES = [f"f{i}" for i in range(5)]


def _copy(narrow: torch.nn.Module, wide: torch.nn.Module, slices: dict[str, tuple]) -> None:
    """Narrow op's parameters = the wide op's, sliced (rows first: the kept output units)."""
    with torch.no_grad():
        for name, p in narrow.named_parameters():
            src = dict(wide.named_parameters())[name]
            p.copy_(src[slices[name]] if name in slices else src)


def test_masked_ops_compute_exactly_the_narrow_op_of_that_width() -> None:
    torch.manual_seed(0)
    x, s = torch.randn(6, 20), torch.randn(6, 7, 8)
    for d in (4, 9):
        wide, narrow = ElasticFC(20, 16), ElasticFC(20, d)
        _copy(
            narrow,
            wide,
            {"fc.weight": (slice(0, d),), "norm.weight": (slice(0, d),), "norm.bias": (slice(0, d),)},
        )
        out = wide(x, d)
        torch.testing.assert_close(out[:, :d], narrow(x, d))
        assert (out[:, d:] == 0).all()
        for gate in (False, True):
            wide_p, narrow_p = ElasticPair(20, 16, gate), ElasticPair(20, d, gate)
            rows = {"proj.weight": (slice(0, d),), "norm.weight": (slice(0, d),), "norm.bias": (slice(0, d),)}
            _copy(narrow_p, wide_p, rows)
            torch.testing.assert_close(wide_p(x, x.flip(0), d)[:, :d], narrow_p(x, x.flip(0), d))
    # DotProduct: at width d only the first round(sqrt(2 d)) compressed fields take part
    d = 8
    wide_dot, narrow_dot = ElasticDot(20, 7, 8, 32), ElasticDot(20, 7, 8, d)
    k, n_wide = dot_tokens(d), dot_tokens(32) + 1
    rows, cols = torch.triu_indices(n_wide, n_wide, offset=1)
    kept = [c for c, (i, j) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)) if j <= k]
    slices = {"compress.weight": (slice(0, k),), "compress.bias": (slice(0, k),)}
    slices |= {"norm.weight": (slice(0, d),), "norm.bias": (slice(0, d),), "out.weight": (slice(0, d), kept)}
    _copy(narrow_dot, wide_dot, slices)
    out = wide_dot(x, s, d)
    torch.testing.assert_close(out[:, :d], narrow_dot(x, s, d))
    assert (out[:, d:] == 0).all()
    # sparse ops: fields beyond n are 0, and attention never attends to them
    n = 3
    wide_e, narrow_e = ElasticEmbedFC(7, 8, 8), ElasticEmbedFC(7, n, 8)
    _copy(narrow_e, wide_e, {"fc.weight": (slice(0, n),)})
    torch.testing.assert_close(wide_e(s, n)[:, :n], narrow_e(s, n))
    wide_a, narrow_a = ElasticAttention(7, 8, 8, 2, 16), ElasticAttention(7, n, 8, 2, 16)
    _copy(narrow_a, wide_a, {"project.fc.weight": (slice(0, n),)})
    out = wide_a(s, n)
    torch.testing.assert_close(out[:, :n], narrow_a(s, n))
    assert (out[:, n:] == 0).all()


def test_any_connection_sampling_respects_the_limits() -> None:
    rng = np.random.default_rng(0)
    space = dataclasses.replace(SPACE, num_blocks=7)
    counts: dict[int, list[int]] = {i: [] for i in range(1, 8)}
    for _ in range(400):
        g = sample(rng, space)
        check(g, space)
        for i, b in enumerate(g, start=1):
            for conn in (b.dense_in, b.sparse_in):
                assert 1 <= len(conn) <= min(i, space.max_connections) and len(set(conn)) == len(conn)
                assert all(0 <= j < i for j in conn)
            counts[i].append(len(b.dense_in))
            assert len(b.dense_ops) == len(b.sparse_ops) == 1  # single-operator
    for i, seen in counts.items():  # 1 + Binomial(min(n - 1, 3), 0.5) with n = i sources
        assert np.mean(seen) == pytest.approx(1 + 0.5 * min(i - 1, 3), abs=0.15), i


def test_mutations_keep_specs_valid_and_change_the_model() -> None:
    rng = np.random.default_rng(1)
    g = sample(rng, SPACE)
    kjt = KeyedJaggedTensor.from_lengths_sync(
        NAMES, torch.randint(0, 9, (40,)), torch.ones(40, dtype=torch.int32)
    )
    for step in range(60):
        child = mutate(rng, g, SPACE, 1 + step % 3)
        check(child, SPACE)
        assert canonical(child, SPACE) != canonical(g, SPACE)
        assert decode(encode(child)) == child
        spec = arch_from_genotype(child, SPACE, num_dense=3)
        names = {blk["name"].split("_")[0] for blk in spec["blocks"]}
        assert names == {f"b{i}" for i in live_blocks(child)}  # unreachable blocks are left out
        assert build_model(spec, NAMES, [9] * 5, 3)(torch.randn(8, 3), kjt).shape == (8,)
        normed = arch_from_genotype(child, SPACE, num_dense=3, norm=True)
        norms = [blk for blk in normed["blocks"] if blk.get("args", {}).get("layer_norm")]
        assert len(norms) == 2 * len(live_blocks(child))  # each live block's dense and sparse output
        assert build_model(normed, NAMES, [9] * 5, 3)(torch.randn(8, 3), kjt).shape == (8,)
        g = child


def test_a_subnet_through_the_supernet_runs_every_path() -> None:
    net = Supernet(space=SPACE, feature_names=NAMES, num_embeddings=[20] * 5, num_dense=3, table_cap=10)
    kjt = KeyedJaggedTensor.from_lengths_sync(
        NAMES, torch.randint(0, 20, (40,)), torch.ones(40, dtype=torch.int32)
    )
    dense = torch.randn(8, 3)
    assert net.embeddings.ebc.embedding_bag_configs()[0].num_embeddings == 10  # capped tables
    for path in (full_path(SPACE), sample(np.random.default_rng(2), SPACE)):
        net.zero_grad()
        net(dense, kjt, path).sum().backward()
        assert net.head.weight.grad is not None
    # a subnet leaves the ops it does not use untouched
    b = Block(("fc",), ("embed_fc",), 8, 4, (0,), (0,), (0,), (0,), False, False)
    path = (b, *[dataclasses.replace(b, dense_in=(i,)) for i in range(1, 4)])
    net.zero_grad()
    net(dense, kjt, path).sum().backward()
    assert net.blocks[0].dense_ops["dot"].out.weight.grad is None


def _toy_score(g) -> float:
    return sum(b.dense_dim / (1 + j) + b.sparse_fields * 0.1 for j, b in enumerate(g)) / 100


def test_evolution_is_reproducible_and_resumes(tmp_path: Path) -> None:
    config = NASRecConfig(space=SPACE, population=6, sample_size=3, children=3, rounds=4, mutations_start=3)
    config.mutations_decay_every = 2
    assert [mutation_count(config, r) for r in range(4)] == [3, 3, 2, 2]
    flops = lambda g: 0.0  # noqa: E731
    a = Evolution(config, _toy_score, flops, str(tmp_path / "a.json")).run(progress=False)
    b = Evolution(config, _toy_score, flops, str(tmp_path / "b.json")).run(progress=False)
    assert a.best_per_round == b.best_per_round and a.population == b.population and a.scored == b.scored
    assert len(a.scored) == 6 + 4 * 3 and a.best_per_round == sorted(a.best_per_round, reverse=True)
    # stopped after round 2, then resumed from its saved state: the same end
    short = dataclasses.replace(config, rounds=2)
    Evolution(short, _toy_score, flops, str(tmp_path / "c.json")).run(progress=False)
    resumed = Evolution(config, _toy_score, flops, str(tmp_path / "c.json"))
    c = resumed.run(EvolutionState.load(str(tmp_path / "c.json")), progress=False)
    assert c.best_per_round == a.best_per_round and c.population == a.population and c.scored == a.scored
    # interrupted while scoring the initial population: resumes from the last scored subnet
    scored: list[float] = []

    def interrupted(g) -> float:
        if len(scored) == 4:
            raise KeyboardInterrupt
        scored.append(_toy_score(g))
        return scored[-1]

    with pytest.raises(KeyboardInterrupt):
        Evolution(config, interrupted, flops, str(tmp_path / "e.json")).run(progress=False)
    assert len(EvolutionState.load(str(tmp_path / "e.json")).population) == 4
    resumed = Evolution(config, _toy_score, flops, str(tmp_path / "e.json"))
    e = resumed.run(EvolutionState.load(str(tmp_path / "e.json")), progress=False)
    assert e.best_per_round == a.best_per_round and e.population == a.population and e.scored == a.scored
    # a FLOPs budget rejects subnets over it
    budget = dataclasses.replace(config, max_flops=1.0)
    big = lambda g: float(sum(b.dense_dim for b in g))  # noqa: E731
    with pytest.raises(ValueError, match="no new subnet within the budget max_flops=1"):
        Evolution(budget, _toy_score, big, str(tmp_path / "d.json")).run(progress=False)
    # with cost_metric=latency the budget limits the cost (predicted ms), not the FLOPs
    slow = dataclasses.replace(config, cost_metric="latency", max_latency_ms=1.0)
    with pytest.raises(ValueError, match="no new subnet within the budget max_latency_ms=1"):
        Evolution(slow, _toy_score, flops, str(tmp_path / "l.json"), cost=big).run(progress=False)
    fast = dataclasses.replace(slow, max_latency_ms=1e9)
    e = Evolution(fast, _toy_score, big, str(tmp_path / "f.json"), cost=lambda g: 0.5).run(progress=False)
    assert e.population and all(s.flops == big(decode(s.genotype)) for s in e.scored.values())


@pytest.mark.integration
def test_killed_search_resumes_to_the_same_arch(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    reference = json.loads((searched("nasrec") / "arch.json").read_text())
    findings = json.loads((searched("nasrec") / "search.json").read_text())["findings"]
    ranking = findings["ranking"]  # the tiny preset trains 3 random subnets stand-alone
    assert ranking["subnets"] == 3 and (searched("nasrec") / "ranking.png").exists()
    for key in ("kendall_tau", "kendall_tau_finetuned", "pearson_r", "pearson_r_finetuned"):
        assert -1 <= ranking[key] <= 1, key
    assert findings["chosen"]["name"] == findings["top_k"][0]["name"]
    assert len(findings["best_fitness_per_round"]) == findings["rounds"] + 1
    args = tiny_search_args("nasrec", shards)
    for point in ("checkpoint-saved:1", "evolution-round-saved:1", "pool-job-done:1"):
        out = tmp_path / point.replace(":", "_")
        got = killed_then_resumed(args, out, point, "checkpoint_every=20")
        assert got["blocks"] == reference["blocks"] and got["head"] == reference["head"], point
        shutil.rmtree(out)
