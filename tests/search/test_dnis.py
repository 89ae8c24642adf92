"""DNIS: frequency blocks from saved counts, alpha's gradient normalization and clipping,
pruning to an exact compression rate, real smaller tables, resume after a kill."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from recsearch.data.shards import ShardInfo
from recsearch.data.vocab import saved_counts
from recsearch.models.blocked import block_rows
from recsearch.models.builder import build_model
from recsearch.profile.counts import param_counts
from recsearch.search.contract import SearchData
from recsearch.search.dnis.blocks import frequency_blocks
from recsearch.search.dnis.config import DnisConfig
from recsearch.search.dnis.prune import prune_dims
from recsearch.search.dnis.search import (
    SelectionSteps,
    _supernet,
    field_blocks,
    normalize_rows_,
    prune,
    pruned_arch,
)
from tests.search.conftest import killed_then_resumed, tiny_search_args, trains_on_two_processes_and_exports


def _data(shards: Path) -> SearchData:
    return SearchData(str(shards), [0, 1], 2, ShardInfo.load(str(shards)))


def test_frequency_blocks_come_from_the_saved_counts(shards: Path, tmp_path: Path) -> None:
    data = _data(shards)
    starts = field_blocks(DnisConfig(blocks=4), data)
    for f, s in zip(data.feature_names, starts, strict=True):
        counts = saved_counts(str(shards), f)
        assert s[:2] == [0, 2], "block 0 holds the reserved ids (missing, rare) alone"
        assert len(s) <= 4 and s == sorted(set(s))
        cum = np.cumsum(counts[2:]) / max(counts[2:].sum(), 1)
        if len(s) == 4:  # each value block ends at the first id where the cumulative share reaches 1/3, 2/3
            for end, share in zip(s[2:], (1 / 3, 2 / 3), strict=True):
                assert cum[end - 3] >= share - 1e-9 and (end == 3 or cum[end - 4] < share), (f, s)
            if len(counts) >= 100:  # ids by falling frequency: an equal share takes more of them
                assert s[2] - s[1] <= s[3] - s[2] + 1 <= len(counts) - s[3] + 2, (f, s)
    # explicit shares, a tiny vocabulary, and the count layout `convert` writes
    counts = np.array([5, 3, 50, 30, 10, 5, 3, 2])
    assert frequency_blocks(counts, 4) == [0, 2, 3, 4]
    assert frequency_blocks(counts, 4, [0.8, 0.95]) == [0, 2, 4, 6]
    assert frequency_blocks(np.array([4, 1]), 6) == [0]
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "genre.json").write_text(json.dumps({"counts": [0, 2, 9, 4]}))
    assert saved_counts(str(tmp_path), "genre").tolist() == [0, 2, 9, 4]
    with pytest.raises(ValueError, match="no saved frequency counts for user"):
        saved_counts(str(tmp_path), "user")


class _Alpha(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.ones(3, 4))

    def arch_parameters(self) -> dict[str, torch.nn.Parameter]:
        return {"alpha": self.alpha}


def test_alpha_gradients_are_normalized_per_row_and_alpha_is_clipped(shards: Path) -> None:
    g = torch.tensor([[1e-3, -2e-3, 3e-3, 0.0], [10.0, 0.0, -10.0, 20.0], [0.0, 0.0, 0.0, 0.0]])
    n = normalize_rows_(g.clone())
    assert torch.allclose(n[:2].abs().mean(dim=1), torch.ones(2), atol=1e-3), "Eq. 8: rows on one scale"
    assert torch.equal(n[2], torch.zeros(4)), "a block without gradient stays put"
    steps = SelectionSteps(DnisConfig(arch_lr=0.5), _data(shards))
    model = _Alpha()
    opt = steps.optimizers(model)["arch"]
    for sign in (-1.0, *[1.0] * 8):  # Adam steps of about lr each way
        model.alpha.grad = sign * torch.tensor([[1.0, -1.0, 0.0, 2.0]] * 3)
        steps.before_arch_step(model)
        opt.step()
        steps.after_arch_step(model)
        assert float(model.alpha.min()) >= 0.0 and float(model.alpha.max()) <= 1.0
    assert model.alpha[0, 0] == 0.0 and model.alpha[0, 1] == 1.0, "clipped at both ends"


def test_alpha_l1_lets_only_columns_the_validation_gradient_holds_up_survive(shards: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    held = torch.tensor([-1.0, -1.0, 0.0, 0.0])  # a consistent pull up on the first two columns
    noise_mean = {}
    for l1 in (0.0, 0.3):
        steps = SelectionSteps(DnisConfig(arch_lr=0.05, alpha_l1=l1), _data(shards))
        model = _Alpha()
        opt = steps.optimizers(model)["arch"]
        for _ in range(200):  # zero-mean noise on every column, on top of the pull
            model.alpha.grad = held + torch.randn(3, 4, generator=gen)
            steps.before_arch_step(model)
            opt.step()
            steps.after_arch_step(model)
        assert torch.equal(model.alpha[:, :2], torch.ones(3, 2)), "held columns stay whole"
        noise_mean[l1] = float(model.alpha[:, 2:].mean())
    # the paper's rule: noise only random-walks alpha; the L1 pull takes it to 0
    assert noise_mean[0.0] > 0.3 and noise_mean[0.3] < 0.01, noise_mean


def test_shared_init_starts_every_search_table_at_one_scale(shards: Path) -> None:
    data = _data(shards)
    total = sum(data.info.num_embeddings)
    for init in ("table", "shared"):
        config = DnisConfig(blocks=4, emb_dim=8, init=init)
        net = _supernet(config, data, field_blocks(config, data))
        peaks = {}
        for f, n, keys in zip(data.feature_names, data.info.num_embeddings, net.embeddings.keys, strict=True):
            w = [net.embeddings.ebc.embedding_bags[f"t_{k}"].weight.detach() for k in keys if k]
            bound = total**-0.5 if init == "shared" else n**-0.5
            peak = max(float(t.abs().max()) for t in w)
            assert peak <= bound, (init, f, peak, bound)
            peaks[f] = (peak, n)
        # the largest table has enough rows to come near its bound
        peak, n = max(peaks.values(), key=lambda p: p[1])
        assert peak > 0.5 * (total**-0.5 if init == "shared" else n**-0.5)
        if init == "table":  # small tables start larger: what init=shared removes
            assert min(peaks.values(), key=lambda p: p[1])[0] > 2 * peak


@pytest.mark.parametrize("materialize", ["block", "field"])
def test_pruning_hits_the_compression_rate_with_real_smaller_tables(shards: Path, materialize: str) -> None:
    data = _data(shards)
    config = DnisConfig(emb_dim=16, blocks=4, materialize=materialize)
    starts = field_blocks(config, data)
    rows = [block_rows(s, n) for s, n in zip(starts, data.info.num_embeddings, strict=True)]
    rng = np.random.default_rng(0)
    scores = [[rng.random(16) for _ in s] for s in starts]
    full = 16 * sum(data.info.num_embeddings)
    biggest_unit = 4 * max(data.info.num_embeddings)
    for cr in (2.0, 3.0, 7.5):
        dims = prune(config, starts, rows, scores, cr)
        assert all(d % 4 == 0 for dd in dims for d in dd)
        model = build_model(
            pruned_arch(config, data.feature_names, starts, dims, cr),
            data.feature_names,
            data.info.num_embeddings,
            13,
        )
        kept = param_counts(model)["embedding_params"]
        assert full / cr - biggest_unit < kept <= full / cr, (cr, kept, full / cr)
        tables = {n: p.shape for n, p in model.named_parameters() if "embedding_bags" in n}
        if materialize == "block":
            want = {
                (r, d) for rr, dd in zip(rows, dims, strict=True) for r, d in zip(rr, dd, strict=True) if d
            }
            assert {tuple(s) for s in tables.values()} <= want and len(tables) == sum(
                d > 0 for dd in dims for d in dd
            )
        else:
            assert len(tables) == sum(dd[0] > 0 for dd in dims)
    # a higher score keeps more columns
    assert prune_dims([np.array([9.0] * 8), np.array([1.0] * 8)], [10, 10], 80, 4) == [8, 0]


def test_search_resumes_after_a_kill_to_the_same_dims(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    reference = json.loads((searched("dnis") / "arch.json").read_text())
    f = json.loads((searched("dnis") / "search.json").read_text())["findings"]
    assert f["pruned"][0]["achieved_cr"] == pytest.approx(4.0, rel=0.02)
    assert set(f["phase_seconds"]) >= {"blocks", "search", "prune", "retrain_cr4"}
    args = tiny_search_args("dnis", shards)
    got = killed_then_resumed(args, tmp_path / "killed", "checkpoint-saved:3", "checkpoint_every=20")
    assert got["embedding"] == reference["embedding"]


@pytest.mark.integration
def test_found_mixed_dim_model_trains_on_two_processes_and_exports(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    arch = searched("dnis") / "arch.json"
    dims = {d for b in json.loads(arch.read_text())["embedding"]["blocks"].values() for d in b["dims"]}
    assert len(dims - {0}) > 1, "several table dims"
    trains_on_two_processes_and_exports(arch, shards, tmp_path)


def test_value_block_dims_compare_blocks_of_like_frequency_by_table_size(tmp_path: Path) -> None:
    from recsearch.search.dnis.experiments import value_block_dims

    (tmp_path / "truth").mkdir()
    truth = {"cardinality": [20_000, 9_000, 50, 40], "cat_scale": [0.3, 0.0, 0.2, 0.0]}
    (tmp_path / "truth" / "teacher.json").write_text(json.dumps(truth))
    dims = [[0, 32, 24, 4], [0, 8, 16, 12], [8, 16, 16, 32], [32, 20, 28, 32]]
    blocks = {f"cat_{i}": {"starts": [0, 2, 5, 9], "dims": d} for i, d in enumerate(dims)}
    arch = {"embedding": {"blocks": blocks}}
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    lines = value_block_dims(tmp_path, tmp_path / "arch.json")
    # the reserved block and the tail are left out: (32 + 24) / 2 vs (8 + 16) / 2
    assert lines[2] == "| >= 5,000 | 1, 28.0 | 1, 12.0 |"
    assert lines[3] == "| 1,000-4,999 | 0, - | 0, - |"
    assert lines[4] == "| 0-999 | 1, 16.0 | 1, 24.0 |"
