"""AdaS&S: sampling follows the scores, both table schemes, a seeded policy search, the
stability record, real mixed-dim tables, resume after a kill."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import build_model
from recsearch.profile.counts import param_counts
from recsearch.search.adass.config import AdassConfig
from recsearch.search.adass.policy import search_sizes
from recsearch.search.adass.sampling import AdaptiveSampler
from recsearch.search.adass.supernet import AdassSupernet
from tests.conftest import run_recsearch
from tests.search.conftest import killed_then_resumed, tiny_search_args, trains_on_two_processes_and_exports


def test_sampling_rates_follow_the_scores_and_draws_follow_the_rates() -> None:
    s = AdaptiveSampler(3, 4, lambda_fs=0.6, keep=0.6, floor=0.1, momentum=0.0)
    # field 0: size 2's embeddings vary least (least trained) -> drawn most
    variance = {0: [0.9, 0.5, 0.1, 0.7], 1: [0.2, 0.2, 0.2, 0.2], 2: [0.1, 0.2, 0.3, 0.4]}
    for t in range(4):
        s.update([t] * 3, [True] * 3, np.array([variance[i][t] for i in range(3)]), np.zeros(3), np.zeros(3))
    pe = s.size_rates()
    assert np.allclose(pe.sum(axis=1), 1) and (pe >= 0.1 / 4 - 1e-12).all(), "a distribution, floored"
    assert int(np.argmax(pe[0])) == 2 and int(np.argmin(pe[0])) == 0
    assert np.allclose(pe[1], 0.25), "equal scores, equal rates"
    assert list(np.argsort(-pe[2])) == [0, 1, 2, 3]
    # fields with larger gradient / embedding scores are kept more often
    s.update([0] * 3, [True] * 3, np.full(3, 0.5), np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
    pf = s.keep_rates()
    assert pf[0] < pf[1] < pf[2] and pf.mean() == pytest.approx(0.6, abs=0.01)
    # empirical frequencies of many draws match the rates; at least one field is always kept
    pe, pf = s.size_rates(), s.keep_rates()
    draws = [s.draw(seed=0, step=k) for k in range(4000)]
    freq = np.zeros_like(pe)
    for choice, keep in draws:
        freq[np.arange(3), choice] += 1
        assert any(keep)
    assert np.abs(freq / 4000 - pe).max() < 0.03
    want = pf.copy()
    want[np.argmax(pf)] += np.prod(1 - pf)  # a draw keeping no field keeps the likeliest one
    assert np.abs(np.mean([k for _, k in draws], axis=0) - want).max() < 0.03
    assert s.draw(0, 7) == s.draw(0, 7), "a step's draw depends only on (seed, step) and the scores"
    restored = AdaptiveSampler(3, 4, lambda_fs=0.6, keep=0.6, floor=0.1, momentum=0.0)
    restored.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert np.allclose(restored.size_rates(), pe) and np.allclose(restored.keep_rates(), pf)


@pytest.mark.parametrize("scheme", ["independent", "shared"])
def test_supernet_schemes_run_any_subnet(scheme: str) -> None:
    config = AdassConfig(sizes=[4, 8, 16], common_dim=8, base_hidden=[8], scheme=scheme)
    net = AdassSupernet(config=config, feature_names=["a", "b"], num_embeddings=[10, 20], num_dense=3)
    tables = {n: tuple(p.shape) for n, p in net.named_parameters() if "embedding_bags" in n}
    if scheme == "shared":
        assert sorted(tables.values()) == [(10, 16), (20, 16)]
    else:
        assert len(tables) == 6 and (20, 4) in tables.values()
    kjt = KeyedJaggedTensor(
        keys=["a", "b"], values=torch.tensor([1, 2, 3, 4, 5, 6]), lengths=torch.ones(6, dtype=torch.int32)
    )
    dense = torch.randn(3, 3)
    out = net(dense, kjt, [0, 2], [True, False])
    assert out.shape == (3,) and [e.shape[1] for e in net.pre] == [4, 16]
    out.sum().backward()
    assert net.transforms[1][0].weight.grad is None, "an unchosen size takes no gradient"


def test_policy_search_is_seeded_and_follows_the_reward() -> None:
    sizes = [4, 8, 16, 32]
    best = (3, 0, 2, 1, 3)

    def reward(choice: tuple[int, ...]) -> float:
        return 0.7 + 0.02 * sum(c == b for c, b in zip(choice, best, strict=True))

    kw = dict(steps=80, samples=8, lr=0.01, dim=8, layers=1, lambda_r=0.0, lambda_c=0.0)
    a = search_sizes(reward, 5, sizes, seed=3, **kw)  # type: ignore[arg-type]
    b = search_sizes(reward, 5, sizes, seed=3, **kw)  # type: ignore[arg-type]
    assert a == b, "the same seed, the same search"
    assert tuple(a["choice"]) == best
    # the resource penalty alone pushes every field to the smallest size
    cheap = search_sizes(lambda c: 0.7, 5, sizes, seed=3, **{**kw, "lambda_r": 0.05})  # type: ignore[arg-type]
    assert cheap["choice"] == [0] * 5

    # resource=rows: at the same penalty, a field holding most rows gives up dims the others keep
    def wider(c: tuple[int, ...]) -> float:
        return 0.7 + 0.001 * sum(c)

    tie = {**kw, "lambda_r": 0.2}
    alike = search_sizes(wider, 5, sizes, seed=3, **tie)  # type: ignore[arg-type]
    by_rows = search_sizes(wider, 5, sizes, seed=3, field_weights=[4.6, 0.1, 0.1, 0.1, 0.1], **tie)  # type: ignore[arg-type]
    assert len(set(alike["choice"])) == 1
    assert by_rows["choice"][0] < min(by_rows["choice"][1:])


def test_search_records_stability_and_ships_real_mixed_dim_tables(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    from recsearch.data.shards import ShardInfo

    info = ShardInfo.load(str(shards))
    names = info.sparse_names  # the searches list sizes in feature order
    out = searched("adass")
    f = json.loads((out / "search.json").read_text())["findings"]
    assert len(f["searches"]) == 3 and set(f["stability"]) == set(f["sizes"]) == set(names)
    for field, st in f["stability"].items():
        chosen = [s["sizes"][names.index(field)] for s in f["searches"]]
        assert st["mode_share"] == pytest.approx(max(chosen.count(x) for x in chosen) / 3, abs=1e-3)
    assert (out / "stability.png").exists()
    arch = json.loads((out / "arch.json").read_text())
    model = build_model(arch, info.sparse_names, info.num_embeddings, 13)
    assert param_counts(model)["embedding_params"] == f["embedding_params"]
    assert {t["feature"]: t["dim"] for t in model.spec["tables"]} == {n: f["sizes"][n] for n in names}
    got = killed_then_resumed(
        tiny_search_args("adass", shards), tmp_path / "killed", "checkpoint-saved:3", "checkpoint_every=20"
    )
    assert got["embedding"] == arch["embedding"]


@pytest.mark.integration
def test_chosen_sizes_train_on_two_processes_and_export(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    arch = searched("adass") / "arch.json"
    assert len(set(json.loads(arch.read_text())["embedding"]["dims"].values())) > 1, "several table dims"
    trains_on_two_processes_and_exports(arch, shards, tmp_path)


def test_another_mode_searches_the_same_supernet(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    first = searched("adass")
    args = tiny_search_args("adass", shards)
    reuse = [f"supernet_from={first}", "do_retrain=false", "searches=1"]
    run_recsearch(*args, "--out", str(tmp_path / "r"), *reuse, "mode=resource-first")
    f = json.loads((tmp_path / "r" / "search.json").read_text())["findings"]
    assert not (tmp_path / "r" / "supernet").exists(), "no second supernet trained"
    assert (f["lambda_r"], f["lambda_c"]) == (0.005, 0.04)
    bad = run_recsearch(*args, "--out", str(tmp_path / "bad"), *reuse, "sizes=[4,8]", check=False)
    assert bad.returncode == 2 and "was trained with other sizes" in bad.stderr.strip().splitlines()[-1]
