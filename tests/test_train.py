"""Trainer: every table trains with the intended optimizer; metrics; config errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torchrec.optim.optimizers import in_backward_optimizer_filter

from recsearch.data.loader import ShardBatches
from recsearch.data.shards import ShardInfo
from recsearch.dist.env import init_distributed
from recsearch.dist.sharding import FUSED_SHARDING_TYPES, shard_model
from recsearch.models.builder import build_model
from recsearch.models.zoo import create_arch
from recsearch.train.config import TrainConfig
from recsearch.train.trainer import train
from recsearch.utils.config import load_config
from tests.conftest import train_processes


def _local(t) -> list[torch.Tensor]:
    """Local shards of a (sharded) state-dict tensor."""
    return (
        [s.tensor.detach().clone() for s in t.local_shards()] if hasattr(t, "local_shards") else [t.clone()]
    )


@pytest.mark.parametrize("tables", ["uniform", "mixed dims", "frequency blocks"])
@pytest.mark.parametrize("sharding_type", FUSED_SHARDING_TYPES["cpu"])
def test_every_table_moves_with_the_embedding_optimizer(
    shards: Path, sharding_type: str, tables: str
) -> None:
    env = init_distributed()
    info = ShardInfo.load(str(shards))
    torch.manual_seed(0)
    spec = create_arch("dlrm", emb_dim=8, bottom=(16,), top=(16,))
    if tables == "mixed dims":
        spec["embedding"]["dims"] = {"cat_0": 4, "cat_1": 16, "cat_2": 12}
    elif tables == "frequency blocks":  # one table per (feature, block): frequent ids, the rest
        spec["embedding"]["blocks"] = {
            f: {"starts": [0, max(3, n // 4)], "dims": [4 * (1 + i % 4), 8]}
            for i, (f, n) in enumerate(zip(info.sparse_names, info.num_embeddings, strict=True))
        }
    model = build_model(spec, info.sparse_names, info.num_embeddings, 13)
    n_tables = 26 * (2 if tables == "frequency blocks" else 1)
    emb_lr = 0.04
    dmp, plan = shard_model(model, env, "adagrad", emb_lr, [sharding_type])
    table_plans = next(iter(plan.plan.values()))
    assert {p.sharding_type for p in table_plans.values()} == {sharding_type}
    assert {p.compute_kernel for p in table_plans.values()} == {"fused"}

    tables = [k for k in dmp.state_dict() if "embedding_bags" in k]
    assert len(tables) == n_tables
    dense = dict(in_backward_optimizer_filter(dmp.named_parameters()))
    assert not [n for n in dense if "embedding_bags" in n], "no table may fall to the dense optimizer"
    fused_state = dmp.fused_optimizer.state_dict()["state"]
    assert sorted(fused_state) == sorted(tables)

    before = {k: _local(dmp.state_dict()[k]) for k in tables}
    opt = torch.optim.Adam(dense.values(), lr=1e-3)
    batch = next(iter(ShardBatches(str(shards), [0], 2048, shuffle=False)))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        dmp(batch.dense_features, batch.sparse_features), batch.labels.float()
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    for k in tables:
        deltas = [(a - b).abs() for a, b in zip(_local(dmp.state_dict()[k]), before[k], strict=True)]
        biggest = max(float(d.max()) for d in deltas)
        # Adagrad's first step moves every touched coordinate by lr * g / (|g| + eps) = lr (a
        # table read by rare ids only sees gradients ~1e-5, where eps takes 0.2% off)
        assert biggest == pytest.approx(emb_lr, rel=5e-3), (
            f"{k} moved by {biggest}, not by Adagrad lr {emb_lr}"
        )
        rows_moved = sum(int((d.sum(dim=1) > 0).sum()) for d in deltas)
        assert rows_moved > 0, f"{k} did not move"


def test_train_writes_metrics_and_artifacts(shards: Path, tmp_path: Path) -> None:
    config = TrainConfig(batch_size=256, eval_batch_size=2048, warmup_steps=5)
    r = train(
        create_arch("dcn_v2", cross_layers=2, hidden=(32,)), str(shards), [0, 1], 2, str(tmp_path), config
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("auc", "logloss", "ne", "flops", "params", "embedding_params", "samples_per_s"):
        assert key in m, key
    assert m == json.loads(json.dumps(r))
    # golden numbers of this run, recorded before training moved onto the shared loop
    assert m["auc"] == pytest.approx(0.7319287, abs=1e-5)
    assert m["logloss"] == pytest.approx(0.4743286, abs=1e-5)
    assert m["flops"] == 764542 and m["params"] == 486618
    assert m["flops"] > 0 and m["embedding_params"] < m["params"]
    assert m["embedding_bytes"] == 4 * m["embedding_params"]
    assert json.loads((tmp_path / "arch.json").read_text())["tables"][0]["num_embeddings"] > 0
    assert list((tmp_path / "tensorboard").glob("events.*")), "TensorBoard scalars are written"
    # relative NE: this run's NE over another run's (a different model, so not 1)
    base = tmp_path / "base"
    lr = train(create_arch("lr"), str(shards), [0, 1], 2, str(base), TrainConfig(batch_size=256))
    rel = train(
        create_arch("dcn_v2", cross_layers=2, hidden=(32,)),
        str(shards),
        [0, 1],
        2,
        str(tmp_path / "rel"),
        TrainConfig(batch_size=256, eval_batch_size=2048, warmup_steps=5, baseline_run=str(base)),
    )
    assert abs(lr["ne"] - rel["ne"]) > 1e-3
    assert rel["relative_ne"] == pytest.approx(rel["ne"] / lr["ne"], rel=1e-12)
    assert rel["baseline_run"] == str(base)


def test_epochs_stop_early_on_the_validation_day_and_keep_the_best(shards: Path, tmp_path: Path) -> None:
    from recsearch.train.evaluate import evaluate_run

    config = load_config(
        TrainConfig, None, ["epochs=4", "patience=1", "emb_lr=0.5", "dense_lr=0.01"], "tiny", "train"
    )
    r = train(create_arch("fm", emb_dim=8), str(shards), [0], 2, str(tmp_path), config, val_day=1)
    epochs = r["epochs"]
    assert 1 <= len(epochs) <= 4 and [e["epoch"] for e in epochs] == list(range(len(epochs)))
    best = min(range(len(epochs)), key=lambda i: epochs[i]["logloss"])
    assert r["best_epoch"] == best
    if r["stopped_early"]:
        assert len(epochs) == best + 2  # patience 1: one epoch without improvement
    # the saved model is the best epoch's: evaluating it on the validation day gives its logloss
    again = evaluate_run(str(tmp_path), str(shards), 1)
    assert again["logloss"] == pytest.approx(epochs[best]["logloss"], abs=1e-6)
    with pytest.raises(ValueError, match="also a train day"):
        train(create_arch("fm", emb_dim=8), str(shards), [0, 1], 2, str(tmp_path / "x"), config, val_day=1)


def test_loop_lr_schedule_and_budget(shards: Path, tmp_path: Path) -> None:
    from recsearch.train.loop import TrainLoop

    config = load_config(
        TrainConfig, None, ["warmup_steps=4", "lr_decay=cosine", "max_steps=7"], "tiny", "train"
    )
    info = ShardInfo.load(str(shards))
    model = build_model(create_arch("lr"), info.sparse_names, info.num_embeddings, 13)
    loop = TrainLoop(model=model, config=config, env=init_distributed(), run_dir=str(tmp_path), meta={})
    loop.total_steps = 20
    scales = [loop.lr_scale(s) for s in range(20)]
    assert scales[:4] == [0.25, 0.5, 0.75, 1.0]
    assert scales[4] == pytest.approx(1.0) and scales[12] == pytest.approx(0.5) and scales[-1] < 0.01
    loop.total_steps = 70  # a short run: a 100-step warm-up is capped at a quarter of it
    loop.config.warmup_steps = 100
    assert loop.warmup_steps() == 17 and loop.lr_scale(16) == 1.0
    loop.config.warmup_steps = 4
    assert TrainConfig().checkpoint_every > 0  # a long run leaves checkpoints by default
    ran = loop.run(lambda epoch: ShardBatches(str(shards), [0], 128, epoch=epoch))
    assert ran.steps == 7 and ran.start_step == 0  # the step budget
    assert json.loads((tmp_path / "checkpoint" / "meta.json").read_text())["step"] == 7


def test_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['batch_sise'\]"):
        load_config(TrainConfig, None, ["batch_sise=3"])
    with pytest.raises(ValueError, match="TrainConfig.emb_lr must be float, got 'fast'"):
        load_config(TrainConfig, None, ["emb_lr=fast"])
    assert load_config(TrainConfig, None, ["emb_lr=1e-3"]).emb_lr == 0.001  # YAML 1.1 reads 1e-3 as text
    for bad, message in [
        ("batch_size=0", "TrainConfig.batch_size must be >= 1, got 0"),
        ("max_steps=-5", "TrainConfig.max_steps must be >= 0"),
        ("epochs=1.5", "TrainConfig.epochs must be int"),
        ("emb_optimizer=lamb", "emb_optimizer must be one of adagrad, sgd, adam"),
        ("sharding_types=[]", "needs at least one sharding type"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_config(TrainConfig, None, [bad])
    (tmp_path / "bad.yaml").write_text("batch_size: [1\n")
    with pytest.raises(ValueError, match=r"bad.yaml is not valid YAML \(line 2"):
        load_config(TrainConfig, str(tmp_path / "bad.yaml"), [])
    with pytest.raises(ValueError, match=r"no preset 'huge' for train \(known presets: paper, small, tiny\)"):
        load_config(TrainConfig, None, [], "huge", "train")
    (tmp_path / "c.yaml").write_text("batch_size: 128\nsharding_types: [table_wise]\n")
    c = load_config(TrainConfig, str(tmp_path / "c.yaml"), ["emb_lr=0.1"])
    assert (c.batch_size, c.sharding_types, c.emb_lr) == (128, ["table_wise"], 0.1)
    with pytest.raises(ValueError, match=r"sharding type\(s\) \['data_parallel'\] are not allowed"):
        shard_model(torch.nn.Linear(1, 1), init_distributed(), "adagrad", 0.1, ["data_parallel"])


@pytest.mark.integration
def test_two_processes_match_one_and_split_tables(shards: Path, tmp_path: Path) -> None:
    def run(nproc: int, batch: int, out: Path) -> dict:
        return train_processes(nproc, ["--model", "dlrm"], shards, out, f"batch_size={batch}")

    one = run(1, 128, tmp_path / "one")
    two = run(2, 64, tmp_path / "two")  # the same global batch
    assert two["world_size"] == 2
    ranks = {r for t in two["sharding_plan"].values() for r in t["ranks"]}
    assert ranks == {0, 1}, "the plan must place tables on both ranks"
    # Same global batch and data order; only the summation order of gradients differs, which
    # compounds over ~190 steps on 12k rows and a 6k-row eval day: tolerance 0.02 (AUC, NE).
    assert one["auc"] > 0.6  # both learned
    assert abs(one["auc"] - two["auc"]) < 0.02
    assert abs(one["ne"] - two["ne"]) < 0.02


def test_profile_reports_flops_params_and_latency(shards: Path) -> None:
    from recsearch.profile.latency import profile_model

    r = profile_model(create_arch("dlrm", bottom=(32,), top=(32,)), str(shards), batch_sizes=(1, 64))
    assert r["flops"] > 0 and r["lookup_bytes"] == 26 * 16 * 4  # one id per feature, dim 16, fp32
    assert r["params"] == r["embedding_params"] + r["dense_params"]
    assert set(r["latency_ms"]) == {"1", "64"} and all(v > 0 for v in r["latency_ms"].values())
    # FLOPs grow with the dense widths; lookups do not count
    wide = profile_model(create_arch("dlrm", bottom=(256,), top=(256,)), str(shards), batch_sizes=(1,))
    assert wide["flops"] > 2 * r["flops"] and wide["embedding_params"] == r["embedding_params"]
