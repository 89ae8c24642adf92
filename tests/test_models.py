"""Architecture spec, builder and zoo: every model builds, traces, scripts and round-trips."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torchrec.fx
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.arch import ArchError, load_arch, save_arch, validate
from recsearch.models.builder import build_model
from recsearch.models.zoo import create_arch, list_models

FEATURES = [f"cat_{i}" for i in range(6)]
SIZES = [50, 7, 300, 4, 20, 1000]


def batch(b: int = 16, seed: int = 0) -> tuple[torch.Tensor, KeyedJaggedTensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.cat([torch.randint(0, n, (b,), generator=g) for n in SIZES])
    kjt = KeyedJaggedTensor.from_lengths_sync(
        keys=FEATURES, values=ids, lengths=torch.ones(len(FEATURES) * b, dtype=torch.int32)
    )
    return torch.randn(b, 13, generator=g), kjt


@pytest.mark.parametrize("name", list_models())
def test_zoo_model_builds_traces_and_scripts(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(create_arch(name), FEATURES, SIZES, 13).eval()
    dense, kjt = batch()
    out = model(dense, kjt)
    assert out.shape == (16,) and torch.isfinite(out).all()
    traced = torchrec.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(dense, kjt), out)
    scripted = torch.jit.script(traced)
    torch.testing.assert_close(scripted(dense, kjt), out)


def test_mixed_dimension_tables() -> None:
    spec = create_arch("dlrm", emb_dim=8)
    spec["embedding"]["dims"] = {"cat_0": 4, "cat_5": 32}
    bad = {**spec, "embedding": {"dim": 8, "dims": {"cat_0": 6}}}
    with pytest.raises(ArchError, match=r"embedding dims \[6\] are not allowed"):
        build_model(bad, FEATURES, SIZES, 13)
    model = build_model(spec, FEATURES, SIZES, 13)
    dims = {t["feature"]: t["dim"] for t in model.spec["tables"]}
    assert dims["cat_0"] == 4 and dims["cat_5"] == 32 and dims["cat_1"] == 8
    weights = {n: p.shape for n, p in model.named_parameters() if "embedding_bags" in n}
    assert weights["embeddings.ebc.embedding_bags.t_cat_0.weight"] == (50, 4)
    dense, kjt = batch()
    out = model(dense, kjt)
    out.sum().backward()
    torch.testing.assert_close(torch.jit.script(torchrec.fx.symbolic_trace(model))(dense, kjt), out)


def test_frequency_blocked_tables_route_each_id_to_its_block() -> None:
    spec = create_arch("deepfm", emb_dim=8, hidden=(16,))
    spec["embedding"]["blocks"] = {
        "cat_0": {"starts": [0, 2, 10], "dims": [8, 4, 0]},  # ids 10+ pruned: zeros
        "cat_3": {"starts": [0], "dims": [0]},  # the whole field pruned
        "cat_5": {"starts": [0, 2, 100], "dims": [4, 8, 12]},
    }
    model = build_model(spec, FEATURES, SIZES, 13)
    shapes = {n.split(".")[-2]: tuple(p.shape) for n, p in model.named_parameters() if "embedding_bags" in n}
    assert shapes["t_cat_0__b0"] == (2, 8) and shapes["t_cat_0__b1"] == (8, 4)
    assert shapes["t_cat_5__b2"] == (900, 12) and "t_cat_0__b2" not in shapes and "t_cat_3" not in shapes
    assert model.spec["tables"][0]["blocks"][1] == {"first_id": 2, "rows": 8, "dim": 4}
    # the saved spec, its tables with the pruned field's dim 0, rebuilds (eval and export read it)
    assert build_model(copy.deepcopy(model.spec), FEATURES, SIZES, 13).spec == model.spec
    for name, p in model.named_parameters():  # every block starts as its whole table would
        if "t_cat_5__" in name:
            assert 0.5 * 1000**-0.5 < float(p.detach().abs().max()) <= 1000**-0.5
    # multi-id bags: cat_0 = [1, 5] (blocks 0 and 1), [12] (pruned), [] (empty)
    ids = {"cat_0": [[1, 5], [12], []], "cat_5": [[0], [150, 3], [999]]}
    values, lengths = [], []
    for f in FEATURES:
        bags = ids.get(f, [[0], [1], [2]])
        values += [i for bag in bags for i in bag]
        lengths += [len(bag) for bag in bags]
    kjt = KeyedJaggedTensor(keys=FEATURES, values=torch.tensor(values), lengths=torch.tensor(lengths))
    emb = model.embeddings
    out = emb(kjt)
    w = {
        k: emb.ebc.embedding_bags[f"t_{k}"].weight
        for k in ("cat_0__b0", "cat_0__b1", "cat_5__b0", "cat_5__b1", "cat_5__b2")
    }
    want0 = w["cat_0__b0"][1] + emb.projs["cat_0__b1"](w["cat_0__b1"][3])
    torch.testing.assert_close(out[0, 0], want0)
    assert torch.equal(out[1, 0], torch.zeros(8)) and torch.equal(out[2, 0], torch.zeros(8))
    assert torch.equal(out[:, 3], torch.zeros(3, 8))
    want5 = emb.projs["cat_5__b2"](w["cat_5__b2"][50]) + emb.projs["cat_5__b1"](w["cat_5__b1"][1])
    torch.testing.assert_close(out[1, 5], want5)
    dense = torch.randn(3, 13)
    eager = model(dense, kjt)
    torch.testing.assert_close(torch.jit.script(torchrec.fx.symbolic_trace(model))(dense, kjt), eager)
    bad = {**spec, "embedding": {"dim": 8, "blocks": {"cat_1": {"starts": [0, 9], "dims": [4, 4]}}}}
    with pytest.raises(ArchError, match="beyond the table's 7 rows"):
        build_model(bad, FEATURES, SIZES, 13)
    with pytest.raises(ArchError, match="must start at 0 and increase"):
        validate(
            {**spec, "embedding": {"dim": 8, "blocks": {"cat_1": {"starts": [0, 3, 3], "dims": [4, 4, 4]}}}}
        )


def test_saved_spec_rebuilds_the_same_model(tmp_path: Path) -> None:
    model = build_model(create_arch("xdeepfm", cin_layers=(8, 8)), FEATURES, SIZES, 13).eval()
    save_arch(str(tmp_path / "arch.json"), model.spec)
    again = build_model(load_arch(str(tmp_path / "arch.json")), FEATURES, SIZES, 13).eval()
    again.load_state_dict(model.state_dict())
    dense, kjt = batch()
    torch.testing.assert_close(again(dense, kjt), model(dense, kjt))
    with pytest.raises(ArchError, match="do not match the data"):
        build_model(load_arch(str(tmp_path / "arch.json")), FEATURES, [9, *SIZES[1:]], 13)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.update(schema_version=2), "schema_version 2 is not supported"),
        (lambda s: s["blocks"][-1].update(op="dotproduct"), "unknown op 'dotproduct'"),
        (lambda s: s["blocks"][-1].update(dense=["bottom9"]), "reference 'bottom9' is not defined before"),
        (lambda s: s["head"].update(inputs=["nowhere"]), "reference 'nowhere' is not defined"),
        (lambda s: s.update(colour=1), r"unknown key\(s\) \['colour'\]"),
        (lambda s: s["blocks"][0].update(name="Bottom 0"), "must be a new lowercase identifier"),
    ],
)
def test_bad_specs_are_rejected_clearly(mutate, message: str, tmp_path: Path) -> None:
    spec = create_arch("dlrm")
    mutate(spec)
    (tmp_path / "a.json").write_text(json.dumps(spec))
    with pytest.raises(ArchError, match=message):
        load_arch(str(tmp_path / "a.json"))


def test_unknown_model_and_override() -> None:
    with pytest.raises(ValueError, match="unknown model 'dlrm2'; known models: autoint"):
        create_arch("dlrm2")
    with pytest.raises(ValueError, match="unexpected keyword argument 'depth'"):
        create_arch("dcn_v2", depth=3)
    assert validate(create_arch("dcn_v2", cross_layers=3))["blocks"][0]["args"] == {"num_layers": 3}
