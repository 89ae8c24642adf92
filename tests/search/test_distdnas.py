"""DistDNAS: supernet, cost model, day jobs, aggregation, discretization, modes, faults."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import build_model
from recsearch.profile.counts import interaction_flops
from recsearch.profile.latency_model import fit_latency_model
from recsearch.search.distdnas.aggregate import aggregate, weight_entropy
from recsearch.search.distdnas.config import DistDNASConfig, SpaceConfig
from recsearch.search.distdnas.cost import ALL_OPS, cost_weights, fit_cost_table
from recsearch.search.distdnas.job import job_seed, temperature_at
from recsearch.search.distdnas.search import plan_jobs
from recsearch.search.distdnas.space import DENSE_OPS, SPARSE_OPS, arch_from_choice, op_args, sample_choice
from recsearch.search.distdnas.supernet import Supernet
from recsearch.search.distdnas.to_arch import choose, discretize
from recsearch.utils.config import load_config
from recsearch.utils.fileio import write_json
from tests.conftest import REPO, assert_export_matches_eager, run_group, run_recsearch

TINY = SpaceConfig(
    num_blocks=3, dense_dim=32, sparse_fields=4, emb_dim=8, head_hidden=[16], dot_compress_fields=4
)
NAMES = [f"f{i}" for i in range(5)]
SEARCH = ["search", "distdnas", "--preset", "tiny"]
# Architecture logits of a day-0 job on the tiny shards (preset tiny + cost model), recorded
# before the job moved onto the shared training loop: the port must not change them.
GOLDEN_ALPHA = [
    [-0.208422, -0.270122, -0.256575, 0.440269, 0.227972],
    [-0.225547, -0.032936, 0.195045, -0.280859, 0.195734],
    [0.225238, -0.250237, -0.346792, -0.012704, 0.086342],
]
GOLDEN_BETA = [
    [0.316407, 0.413689, 0.354316, -0.541449, -0.343732],
    [-0.320261, 0.379479, -0.153839, 0.055141, 0.372987],
    [-0.13203, 0.078758, -0.274515, 0.080034, 0.249257],
]


def batch(b: int = 16) -> tuple[torch.Tensor, KeyedJaggedTensor]:
    g = torch.Generator().manual_seed(0)
    kjt = KeyedJaggedTensor.from_lengths_sync(
        NAMES, torch.randint(0, 10, (b * 5,), generator=g), torch.ones(b * 5, dtype=torch.int32)
    )
    return torch.randn(b, 3, generator=g), kjt


@pytest.mark.parametrize("block_norm", [False, True])
def test_supernet_mixes_with_gumbel_softmax_and_reaches_every_op(block_norm: bool) -> None:
    torch.manual_seed(0)
    space = dataclasses.replace(TINY, block_norm=block_norm)
    net = Supernet(space=space, feature_names=NAMES, num_embeddings=[10] * 5, num_dense=3, temperature=0.5)
    assert net.alpha.shape == (3, 5) and net.beta.shape == (3, 5)
    assert set(net.arch_parameters()) == {"alpha", "beta"}
    assert net.arch_parameters()["alpha"] is net.alpha
    w_d, w_s = net.mixing_weights(sample=True)
    torch.testing.assert_close(w_d.sum(-1), torch.ones(3))
    torch.testing.assert_close(w_s.sum(-1), torch.ones(3))
    assert not torch.allclose(w_d, torch.full_like(w_d, 0.2))  # noise: not the uniform softmax
    # noise-free weights are softmax(alpha / lambda), not softmax(alpha)
    with torch.no_grad():
        net.alpha.copy_(torch.randn(3, 5))
        net.beta.copy_(torch.randn(3, 5))
    w_d, w_s = net.mixing_weights(sample=False)
    torch.testing.assert_close(w_d, torch.softmax(net.alpha / 0.5, -1))
    torch.testing.assert_close(w_s, torch.softmax(net.beta / 0.5, -1))
    state = net.arch_state()
    np.testing.assert_allclose(state["dense_weights"], w_d.detach().numpy(), rtol=1e-6)
    dense, kjt = batch()
    net.eval()
    torch.testing.assert_close(net(dense, kjt), net(dense, kjt))  # eval: no noise
    net.train()
    net(dense, kjt).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} gets no gradient"
    # the architecture step looks embeddings up without autograd: no gradient reaches the tables
    net.zero_grad()
    net(dense, kjt, embedding_grad=False).sum().backward()
    for name, p in net.embeddings.named_parameters():
        assert p.grad is None, name
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0


def test_job_seeds_differ_per_day_and_are_reproducible() -> None:
    seeds = [job_seed(0, [d]) for d in range(22)]
    assert len(set(seeds)) == 22 and seeds == [job_seed(0, [d]) for d in range(22)]
    assert job_seed(1, [0]) != job_seed(0, [0]) and job_seed(0, [0, 1]) not in seeds
    assert all(0 <= s < 2**31 for s in seeds)


def test_temperature_schedule_and_weightweight_entropy() -> None:
    annealed = DistDNASConfig(space=TINY, temperature=5.0, temperature_end=0.5)
    assert temperature_at(annealed, 0, 11) == 5.0 and temperature_at(annealed, 10, 11) == pytest.approx(0.5)
    assert temperature_at(annealed, 5, 11) == pytest.approx(5.0 * 0.1**0.5)  # geometric
    assert temperature_at(DistDNASConfig(space=TINY, temperature=3.0), 7, 11) == 3.0
    assert weight_entropy(np.array([[0.2] * 5, [1.0, 0, 0, 0, 0]])) == pytest.approx([1.0, 0.0], abs=1e-4)
    with pytest.raises(ValueError, match="arch_warmup"):
        DistDNASConfig(space=TINY, arch_warmup=1.0)


def test_arch_from_choice_builds_the_supernet_wiring() -> None:
    plain = dataclasses.replace(TINY, block_norm=False)
    one = [(["crossnet"], ["pma"])] * 3
    # before 2026-12-02 (shared_merger=false): every op reads both inputs, with its own merger
    spec = arch_from_choice(one, dataclasses.replace(plain, shared_merger=False))
    assert [b["name"] for b in spec["blocks"]] == [
        f"b{i}_{op}" for i in (1, 2, 3) for op in ("crossnet", "pma")
    ]
    b2 = spec["blocks"][2]  # block 2's dense op: blocks 1 and 0 dense, block 1 sparse (flattened)
    assert b2["dense"] == ["b1_crossnet", "input.dense", "b1_pma"]
    assert b2["sparse"] == ["b1_pma", "b1_crossnet", "input.dense"]
    assert spec["head"]["inputs"] == ["b3_crossnet", "b3_pma"]
    # shared_merger: one dense-to-field merger per dense input and block, as the supernet's
    # to_field; CrossNet reads only the dense input, PMA only the sparse one
    spec = arch_from_choice(one, plain)
    by_name = {b["name"]: b for b in spec["blocks"]}
    assert list(by_name)[:7] == ["b1_to_field0", "b1_crossnet", "b1_pma"] + [
        "b2_to_field0",
        "b2_to_field1",
        "b2_crossnet",
        "b2_pma",
    ]
    assert by_name["b2_crossnet"]["dense"] == ["b1_crossnet", "input.dense", "b1_pma"]
    assert by_name["b2_crossnet"]["sparse"] == [] and by_name["b2_pma"]["dense"] == []
    assert by_name["b2_pma"]["sparse"] == ["b1_pma", "b2_to_field0", "b2_to_field1"]
    assert by_name["b2_to_field1"] == {
        "name": "b2_to_field1",
        "op": "dense_to_fields",
        "dense": ["input.dense"],
        "sparse": [],
        "fields_out": 1,
        "dim_out": TINY.emb_dim,
        "args": {},
    }
    fewer = build_model(spec, NAMES, [10] * 5, 3).interaction
    more = build_model(
        arch_from_choice(one, dataclasses.replace(plain, shared_merger=False)), NAMES, [10] * 5, 3
    )
    assert sum(p.numel() for p in fewer.parameters()) < sum(p.numel() for p in more.interaction.parameters())
    # several kept ops of a kind are summed by an add / add3d block, so widths match the supernet
    spec = arch_from_choice([(DENSE_OPS, SPARSE_OPS)] * 3, plain, stack=2)
    names = [b["name"] for b in spec["blocks"]]
    assert "s0_b1_dense" in names and "s1_b3_sparse" in names
    assert spec["head"]["inputs"] == ["s0_b3_dense", "s0_b3_sparse", "s1_b3_dense", "s1_b3_sparse"]
    dense, kjt = batch()
    model = build_model(spec, NAMES, [10] * 5, 3)
    assert model(dense, kjt).shape == (16,)
    with pytest.raises(ValueError, match="block 2 keeps no dense or no sparse op"):
        arch_from_choice([(["linear"], ["pma"]), ([], ["pma"]), (["linear"], ["pma"])], TINY)
    # block_norm: every block ends in a layer-normalizing add / add3d, one kept op or several
    normed = dataclasses.replace(TINY, block_norm=True)
    spec = arch_from_choice(
        [(["crossnet"], ["pma"]), (["linear", "pin"], ["pma"]), (["crossnet"], ["pma"])], normed
    )
    merges = {b["name"]: b["args"] for b in spec["blocks"] if b["op"] in ("add", "add3d")}
    assert merges["b1_dense"] == {"parts": 1, "layer_norm": True} and merges["b2_dense"]["parts"] == 2
    assert len(merges) == 6 and spec["head"]["inputs"] == ["b3_dense", "b3_sparse"]
    assert build_model(spec, NAMES, [10] * 5, 3)(dense, kjt).shape == (16,)


def test_space_options_reach_the_supernet_and_the_discrete_arch() -> None:
    # block 1 reads the raw features: first_crossnet_layers there makes DCN-v2's cross stack
    space = dataclasses.replace(TINY, first_crossnet_layers=7, op_norm=True)
    assert op_args("crossnet", space, 1) == {"num_layers": 7} == op_args("pin", space, 1)
    assert op_args("crossnet", space, 2) == {"num_layers": 1} == op_args("pin", space, 3)
    assert op_args("pin", dataclasses.replace(space, pin_layers=2), 2) == {"num_layers": 2}
    net = Supernet(space=space, feature_names=NAMES, num_embeddings=[10] * 5, num_dense=3)
    assert len(net.blocks[0].dense_ops[DENSE_OPS.index("crossnet")].layers) == 7
    assert len(net.blocks[1].dense_ops[DENSE_OPS.index("crossnet")].layers) == 1
    # op_norm: each op's output is normalized before mixing, so scaling an op's output
    # weights does not change the block's output
    block, dense, kjt = net.blocks[0], *batch()
    x_dense, emb = [dense], net.embeddings(kjt)
    w = torch.full((5,), 0.2)
    before = block(x_dense, emb, w, w)
    with torch.no_grad():
        for p in block.dense_ops[DENSE_OPS.index("identity")].proj.parameters():
            p.mul_(50.0)  # the op's output x50
    after = block(x_dense, emb, w, w)
    torch.testing.assert_close(before[0], after[0], atol=2e-3, rtol=1e-3)  # up to LayerNorm eps
    # the discrete arch normalizes each kept op's output before summing, also a lone op
    spec = arch_from_choice(
        [(["crossnet"], ["pma"]), (["linear", "pin"], ["pma"]), (["crossnet"], ["pma"])], space
    )
    merges = {b["name"]: b["args"] for b in spec["blocks"] if b["op"] in ("add", "add3d")}
    assert merges["b1_dense"] == {"parts": 1, "layer_norm": True, "part_norm": True}
    by_name = {b["name"]: b for b in spec["blocks"]}
    assert by_name["b1_crossnet"]["args"] == {"num_layers": 7} and by_name["b3_crossnet"]["args"] == {
        "num_layers": 1
    }
    assert build_model(spec, NAMES, [10] * 5, 3)(dense, kjt).shape == (16,)


def test_cost_weights_by_block_give_block_one_its_own() -> None:
    table = fit_cost_table(TINY, 3, 5, samples=48, progress=False, by_block=True)
    assert table["groups"] == ["block 1", "blocks 2+"] and len(table["weights"]) == 2 * len(ALL_OPS)
    s_dense, s_sparse = cost_weights(table, TINY.num_blocks)
    w = np.concatenate([np.array(s_dense), np.array(s_sparse)], axis=1)
    assert w.shape == (3, 10) and w.sum() == pytest.approx(3.0) and w.min() >= 0
    np.testing.assert_allclose(w[1], w[2])  # blocks 2..N share their weights
    assert not np.allclose(w[0], w[1])
    shared = fit_cost_table(TINY, 3, 5, samples=48, progress=False)
    d, s_ = cost_weights(shared, 3)
    np.testing.assert_allclose(np.concatenate([d, s_], axis=1).sum(axis=1), 1.0)  # the paper's scale


@pytest.mark.parametrize("metric", ["flops", "latency"])
def test_cost_model_ranks_the_most_expensive_op_first(metric: str) -> None:
    latency = None
    if metric == "latency":  # the per-op latency model, fitted on 6 architectures of the space
        rng = np.random.default_rng(0)
        archs = [arch_from_choice(sample_choice(rng, TINY), TINY) for _ in range(6)]
        latency = fit_latency_model(archs, (3, 5, TINY.emb_dim), repeats=2, progress=False)
    table = fit_cost_table(TINY, 3, 5, samples=96, metric=metric, progress=False, latency=latency)
    w = np.array(table["weights"])
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    assert table["metric"] == metric
    # the marginal FLOPs of each op: the whole space minus that op in every block
    full = interaction_flops(arch_from_choice([(DENSE_OPS, SPARSE_OPS)] * 3, TINY), 3, 5, 8)
    marginal = []
    for op in ALL_OPS:
        d = [o for o in DENSE_OPS if o != op]
        s = [o for o in SPARSE_OPS if o != op]
        marginal.append(full - interaction_flops(arch_from_choice([(d, s)] * 3, TINY), 3, 5, 8))
    order = np.argsort(marginal)
    if metric == "flops":
        assert table["forest_r2"] > 0.8
        assert int(np.argmax(w)) == int(order[-1])  # the costliest op gets the largest weight
        assert w[order[-3:]].min() > w[order[:4]].max()  # the 3 costliest outweigh the 4 cheapest
    else:  # measured time: no ordering is asserted (timings are noisy); the path must work
        assert table["unit"] == "ms at batch 512 (predicted)" and 0 < table["cost_min"] < table["cost_max"]
        assert table["samples"] == 96 and len(table["importance"]) == len(ALL_OPS)


def test_config_sections_presets_and_errors(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("space:\n  num_blocks: 4\n  dense_dim: 64\narch_lr: 1e-2\n")
    cfg = load_config(DistDNASConfig, str(cfg_file), ["space.dense_dim=128"], "tiny", "search/distdnas")
    assert (cfg.space.num_blocks, cfg.space.dense_dim, cfg.arch_lr) == (4, 128, 0.01)
    assert cfg.space.emb_dim == 8 and cfg.batch_size == 128  # from the tiny preset
    for bad, message in [
        ("space.blocks=3", r"unknown SpaceConfig key\(s\) \['blocks'\]"),
        ("temperature=0", "DistDNASConfig.temperature must be > 0, got 0.0"),
        ("space.emb_dim=6", "emb_dim must be a multiple of 4"),
        ("space.head_hidden=[64,-1]", "SpaceConfig.head_hidden must be >= 1"),
        ("mode=two-shot", "DistDNASConfig.mode must be one of distributed"),
        ("threshold=1.5", "threshold must be <= 1"),
        ("space=3", "is a section of keys"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_config(DistDNASConfig, None, [bad])
    with pytest.raises(ValueError, match="unknown search mode 'two-shot'"):
        plan_jobs("two-shot", [0])


def _fake_search(
    out: Path,
    temperature: float,
    jobs: list[tuple[str, list[list[float]], list[list[float]]]],
    average: str = "weights",
):
    out.mkdir()
    config = DistDNASConfig(space=TINY, temperature=temperature, average=average).to_dict()
    write_json(str(out / "request.json"), {"method": "distdnas", "config": config, "train_days": [0, 1, 2]})
    write_json(
        str(out / "plan.json"),
        {"mode": "distributed", "jobs": [{"name": f"day_{d}", "days": [d]} for d in (0, 1, 2)]},
    )
    for name, alpha, beta in jobs:
        (out / name).mkdir()
        probs = torch.softmax(torch.tensor(alpha), -1).tolist()
        write_json(
            str(out / name / "weights.json"),
            {"alpha": alpha, "beta": beta, "dense_weights": probs, "sparse_weights": probs, "seconds": 1.0},
        )


def test_aggregation_averages_weights_and_refuses_missing_days(tmp_path: Path) -> None:
    out = tmp_path / "s"
    a0 = [[1.0, 0, 0, 0, 0]] * 3
    a1 = [[0.0, 3, 0, 0, 0]] * 3
    _fake_search(out, 2.0, [("day_0", a0, a1), ("day_1", a1, a0)])
    with pytest.raises(ValueError, match=r"missing search results: day_2 \(days 2\).*--allow-missing"):
        aggregate(str(out))
    agg = aggregate(str(out), allow_missing=True)
    assert agg["sources"] == ["day_0", "day_1"] and agg["missing"] == ["day_2"]
    assert agg["alpha"][0] == pytest.approx([0.5, 1.5, 0, 0, 0])  # the mean logits, for reference
    # Eq. 6: the mean of the days' weights softmax(alpha_t / lambda)
    w0, w1 = (torch.softmax(torch.tensor(a[0]) / 2.0, -1) for a in (a0, a1))
    assert agg["average"] == "weights" and agg["dense_weights"][0] == pytest.approx(((w0 + w1) / 2).tolist())
    assert agg["sparse_weights"][0] == pytest.approx(((w0 + w1) / 2).tolist())
    # average=logits: softmax of the mean logits
    logits = tmp_path / "logits"
    _fake_search(logits, 2.0, [("day_0", a0, a1), ("day_1", a1, a0)], average="logits")
    by_logits = aggregate(str(logits), allow_missing=True)
    expected = torch.softmax(torch.tensor([0.5, 1.5, 0, 0, 0]) / 2.0, -1).tolist()
    assert by_logits["dense_weights"][0] == pytest.approx(expected)
    assert (out / "aggregate.png").stat().st_size > 1000
    # discretization keeps ops >= the threshold (and the strongest where none reaches it)
    assert choose(agg, 0.3)[0] == (["linear"], ["linear3d"])
    assert choose(agg, 0.1)[0] == (
        ["identity", "linear", "dot_product", "crossnet", "pin"],
        ["identity3d", "linear3d", "transformer", "embed_fc", "pma"],
    )
    spec = discretize(str(out), 0.2, stack=3)
    assert spec["meta"]["stack"] == 3 and len(spec["head"]["inputs"]) == 6
    (out / "day_1" / "weights.json").write_text('{"alpha": [[1, 2')  # truncated
    with pytest.raises(ValueError, match="day_1/weights.json is damaged"):
        aggregate(str(out), allow_missing=True)


def _job(search: Path, name: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "recsearch.search.job", "--search-dir", str(search), "--job", name]
    return run_group(cmd, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def _prepare(shards: Path, out: Path, *overrides: str) -> None:
    """request.json + plan.json + cost table, as `recsearch search` writes them (a dry run)."""
    args = ["--data", str(shards), "--train-days", "0-1", "--val-day", "2", "--out", str(out)]
    run_recsearch(*SEARCH, *args, "--dryrun", *overrides, timeout=300)


@pytest.mark.integration
def test_day_job_matches_the_golden_weights_and_resumes_after_a_kill(shards: Path, tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    # checkpoint_every does not change the numerics; day_seeds=false, PIN's 2 layers, a merger
    # per op (the cost model's FLOPs) and one cost weight per op for every block: the golden
    # run's settings (before 2026-12-02)
    old = ["day_seeds=false", "space.pin_layers=2", "space.shared_merger=false", "cost_by_block=false"]
    _prepare(shards, prepared, "checkpoint_every=5", *old)
    ref = tmp_path / "ref"
    shutil.copytree(prepared, ref)
    r = _job(ref, "day_0")
    assert r.returncode == 0, r.stderr[-3000:]
    golden = json.loads((ref / "day_0" / "weights.json").read_text())
    np.testing.assert_allclose(golden["alpha"], GOLDEN_ALPHA, atol=1e-5)
    np.testing.assert_allclose(golden["beta"], GOLDEN_BETA, atol=1e-5)
    assert golden["steps"] == 23 and golden["val"]["day"] == 2 and 0 < golden["val"]["auc"] < 1
    # killed at several points (checkpoints at steps 5, 10, 15, 20), then rerun
    for point, status, resume in (
        ("checkpoint-saved:2", -9, 10),
        ("checkpoint-moved-aside:3", -9, 15),  # between the two renames of a checkpoint swap
        ("train-step:12:SIGTERM", 2, 12),  # preempted by the scheduler: checkpoint, then stop
    ):
        out = tmp_path / point.replace(":", "_")
        shutil.copytree(prepared, out)
        r = _job(out, "day_0", RECSEARCH_KILL_AT=point)
        assert r.returncode in (status, 130), (point, r.stderr[-2000:])
        assert not (out / "day_0" / "weights.json").exists()
        r = _job(out, "day_0")
        assert r.returncode == 0 and f"resuming from the checkpoint at step {resume} of 23" in r.stdout, point
        got = json.loads((out / "day_0" / "weights.json").read_text())
        np.testing.assert_allclose(got["alpha"], golden["alpha"], atol=1e-5)
        np.testing.assert_allclose(got["beta"], golden["beta"], atol=1e-5)
        assert len(got["history"]) == len(golden["history"]), point


@pytest.mark.integration
def test_day_job_warms_up_before_the_architecture_moves_and_anneals(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    _prepare(shards, out, "arch_warmup=0.5", "temperature_end=1", "log_every=2")
    r = _job(out, "day_0")
    assert r.returncode == 0, r.stderr[-3000:]
    w = json.loads((out / "day_0" / "weights.json").read_text())
    assert w["steps"] == 23 and w["temperature"] == pytest.approx(1.0)
    for h in w["history"]:  # alpha, beta stay 0 (uniform weights) for the first int(0.5 * 23) steps
        uniform = np.allclose(h["dense_weights"], 0.2) and np.allclose(h["sparse_weights"], 0.2)
        assert uniform == (h["step"] <= 11), h["step"]
    temps = [h["temperature"] for h in w["history"]]
    assert temps[0] == 5.0 and temps[-1] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(temps, temps[1:], strict=False))  # annealed at every record
    assert w["heldout"] is not None and 0 < w["heldout"]["auc"] < 1


@pytest.mark.integration
def test_a_killed_search_command_resumes_to_the_same_architecture(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    """The search command itself killed after its first finished job (the other one keeps
    running, orphaned): the rerun waits for that job instead of running it twice, and ends
    with the architecture of an uninterrupted search."""
    out = tmp_path / "s"
    args = ["--data", str(shards), "--train-days", "0-1", "--val-day", "2", "--out", str(out)]
    killed = run_recsearch(*SEARCH, *args, env={"RECSEARCH_KILL_AT": "pool-job-done:1"}, check=False)
    assert killed.returncode == -9
    assert not (out / "search.json").exists()
    run_recsearch(*SEARCH, *args)
    expected = json.loads((searched("distdnas") / "aggregate.json").read_text())
    got = json.loads((out / "aggregate.json").read_text())
    np.testing.assert_allclose(got["alpha"], expected["alpha"], atol=1e-5)
    a, b = (json.loads((d / "arch.json").read_text()) for d in (out, searched("distdnas")))
    assert a["blocks"] == b["blocks"] and a["head"] == b["head"]
    assert a["meta"]["choice"] == b["meta"]["choice"]


@pytest.mark.integration
def test_failed_day_surfaces_through_the_cli_and_a_rerun_runs_only_it(shards: Path, tmp_path: Path) -> None:
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    labels = copy / "day_1_labels.npy"
    saved = labels.read_bytes()
    labels.write_bytes(saved[:100])  # day 1 damaged
    args = ["--data", str(copy), "--train-days", "0-1", "--val-day", "2", "--out", str(tmp_path / "s")]
    r = run_recsearch(*SEARCH, *args, "--mode", "no-cost", "--workers", "2", check=False)
    assert r.returncode == 2
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("recsearch search: error: search job(s) failed: day_1: ") and "logs:" in error
    assert "retrying (attempt 2 of 2)" in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "s" / "day_0" / "weights.json").exists()
    labels.write_bytes(saved)
    r = run_recsearch(*SEARCH, *args, "--mode", "no-cost", "--threads-per-job", "1")
    assert "already done, skipped: day_0" in r.stderr
    assert json.loads((tmp_path / "s" / "day_1" / "weights.json").read_text())["threads"] == 1
    assert json.loads((tmp_path / "s" / "search.json").read_text())["findings"]["cost_weights"] is None


@pytest.mark.integration
def test_distributed_search_outputs_discretize_and_export(
    searched: Callable[[str], Path], shards: Path, tmp_path: Path
) -> None:
    search = searched("distdnas")
    agg = json.loads((search / "aggregate.json").read_text())
    assert agg["sources"] == ["day_0", "day_1"] and agg["workers"] == 2
    seeds = set()
    for day in (0, 1):
        w = json.loads((search / f"day_{day}" / "weights.json").read_text())
        assert w["days"] == [day] and w["cost_gamma"] == 0.004 and w["steps"] == 23
        assert w["val"]["day"] == 2 and w["seed"] == job_seed(0, [day])
        seeds.add(w["seed"])
    assert len(seeds) == 2  # each day its own initialization, shuffle and Gumbel noise
    table = json.loads((search / "cost_table.json").read_text())
    assert table["ops"] == ALL_OPS and sum(table["weights"]) == pytest.approx(1.0)
    record = json.loads((search / "search.json").read_text())
    f = record["findings"]
    assert set(record["phases"]) >= {"cost_model", "search_jobs", "aggregate"}
    assert f["choice"] == json.loads((search / "arch.json").read_text())["meta"]["choice"]
    assert set(f["jobs"]) == {"day_0", "day_1"} and sum(f["cost_weights"].values()) == pytest.approx(1.0)
    # the written arch is the aggregate discretized at the configured threshold
    assert [list(map(list, c)) for c in choose(agg, 0.2)] == f["choice"]
    arch, run = tmp_path / "arch.json", tmp_path / "run"
    r = run_recsearch(
        "discretize", "--search", str(search), "--threshold", "0.19", "--stack", "2", "--out", str(arch)
    )
    assert "stack 2" in r.stdout
    spec = json.loads(arch.read_text())
    assert spec["schema_version"] == 1 and spec["meta"]["stack"] == 2
    train = ["--data", str(shards), "--train-days", "0-1", "--eval-day", "2", "--out", str(run)]
    run_recsearch("train", "--arch", str(arch), *train, "--preset", "tiny")
    assert json.loads((run / "metrics.json").read_text())["auc"] > 0.6
    run_recsearch("export", "--run", str(run), "--out", str(tmp_path / "model.pt"))
    assert_export_matches_eager(run, tmp_path / "model.pt", tmp_path)


@pytest.mark.integration
def test_one_shot_and_fresh_modes_with_the_latency_cost_model(shards: Path, tmp_path: Path) -> None:
    for mode, jobs in (("one-shot", ["one_shot"]), ("fresh", ["day_1"])):
        out = tmp_path / mode
        args = ["--data", str(shards), "--train-days", "0-1", "--val-day", "2", "--out", str(out)]
        run_recsearch(*SEARCH, *args, "--mode", mode, "cost_metric=latency", "--workers", "1")
        record = json.loads((out / "search.json").read_text())
        assert list(record["findings"]["jobs"]) == jobs and record["findings"]["mode"] == mode
        assert json.loads((out / "cost_table.json").read_text())["metric"] == "latency"
        days = json.loads((out / jobs[0] / "weights.json").read_text())["days"]
        assert days == ([0, 1] if mode == "one-shot" else [1])
        assert (out / "arch.json").exists()


def test_search_dry_runs_for_slurm_and_kubernetes(shards: Path, tmp_path: Path) -> None:
    for scheduler, extra in (("slurm", []), ("kubernetes", ["--scheduler-args", "queue=default"])):
        args = [
            "--data",
            str(shards),
            "--train-days",
            "0-1",
            "--val-day",
            "2",
            "--out",
            str(tmp_path / scheduler),
        ]
        r = run_recsearch(*SEARCH, *args, "--scheduler", scheduler, *extra, "--dryrun", timeout=300, cwd=REPO)
        assert "# day_0 (days 0)" in r.stdout and "# day_1 (days 1)" in r.stdout
        assert "recsearch.search.job" in r.stdout
        assert ("--job day_1" if scheduler == "slurm" else "- day_1") in r.stdout
        assert not (tmp_path / scheduler / "search.json").exists()
