"""Export: TorchScript over plain tensors loads with torch + fbgemm_gpu only, same outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recsearch.cli import main
from recsearch.export.serving import serving_model
from recsearch.models.zoo import create_arch
from recsearch.train.checkpoint import load_trained_model
from recsearch.train.config import TrainConfig
from recsearch.train.trainer import train

LOADER = """
import sys, torch, fbgemm_gpu
m = torch.jit.load(sys.argv[1])
x = torch.load(sys.argv[2], weights_only=True)
torch.save(m(x["dense"], x["values"], x["lengths"]), sys.argv[3])
bad = [k for k in sys.modules if k.split(".")[0] in ("torchrec", "recsearch")]
assert not bad, bad
"""


def _inputs(model, b: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tables = model.spec["tables"]
    return {
        "dense": torch.randint(-3, 100, (b, 13), generator=g).float(),
        "values": torch.cat([torch.randint(0, t["num_embeddings"], (b,), generator=g) for t in tables]),
        "lengths": torch.ones(b * len(tables), dtype=torch.int32),
    }


@pytest.fixture(scope="module")
def run(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    spec = create_arch("deepfm", emb_dim=8, hidden=(32,))
    spec["embedding"]["dims"] = {"cat_0": 4, "cat_1": 16}  # mixed dimensions export too
    train(spec, str(shards), [0], 1, str(out), TrainConfig(batch_size=512, eval_batch_size=2048))
    return out


@pytest.mark.integration
def test_torchscript_loads_without_torchrec_and_matches_eager(run: Path, tmp_path: Path) -> None:
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m.pt")]) == 0
    model, meta = load_trained_model(str(run))
    eager = serving_model(model, meta)
    x = _inputs(model, 33, seed=1)
    torch.save(x, tmp_path / "x.pt")
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOADER,
            str(tmp_path / "m.pt"),
            str(tmp_path / "x.pt"),
            str(tmp_path / "y.pt"),
        ],
        check=True,
    )
    served = torch.load(tmp_path / "y.pt", weights_only=True)
    with torch.no_grad():
        expected = eager(x["dense"], x["values"], x["lengths"])
    assert torch.equal(served, expected)
    assert ((served > 0) & (served < 1)).all()


def test_exported_program_has_a_dynamic_batch(run: Path, tmp_path: Path) -> None:
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m.pt2"), "--format", "export"]) == 0
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    model, meta = load_trained_model(str(run))
    eager = serving_model(model, meta)
    for b in (3, 50):
        x = _inputs(model, b, seed=b)
        with torch.no_grad():
            torch.testing.assert_close(program(x["dense"], x["values"], x["lengths"]), eager(**x))


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--run", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
