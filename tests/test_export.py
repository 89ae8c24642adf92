"""Export: TorchScript over plain tensors loads with torch + fbgemm_gpu only, same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recsearch.cli import main
from recsearch.export.serving import serving_model
from recsearch.models.zoo import create_arch
from recsearch.train.checkpoint import load_trained_model
from recsearch.train.config import TrainConfig
from recsearch.train.trainer import train
from tests.conftest import assert_export_matches_eager, serving_inputs


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
    assert_export_matches_eager(run, tmp_path / "m.pt", tmp_path)


def test_exported_program_has_a_dynamic_batch(run: Path, tmp_path: Path) -> None:
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m.pt2"), "--format", "export"]) == 0
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    model, meta = load_trained_model(str(run))
    eager = serving_model(model, meta)
    for b in (3, 50):
        x = serving_inputs(model, b, seed=b)
        with torch.no_grad():
            torch.testing.assert_close(program(x["dense"], x["values"], x["lengths"]), eager(**x))


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--run", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 2
    assert "has no checkpoint" in capsys.readouterr().err


class _Payload:
    """Unpickling this runs a command: what a hostile checkpoint could hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_runs_no_code_from_its_metadata(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pickle
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(run, hostile)
    marker = tmp_path / "pwned"
    (hostile / "checkpoint" / ".metadata").write_bytes(pickle.dumps(_Payload(marker)))
    for args in (
        ["export", "--run", str(hostile), "--out", str(tmp_path / "m.pt")],
        ["eval", "--run", str(hostile), "--data", str(run.parent), "--day", "1"],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "refers to posix.system" in err and "load only checkpoints you trust" in err, err
    assert not marker.exists()
    # the real metadata still loads
    model, _ = load_trained_model(str(run))
    assert model.spec["name"] == "deepfm"
