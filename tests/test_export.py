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
from tests.conftest import assert_export_matches_eager, assert_raw_export_scores_the_day, serving_inputs


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


def test_raw_feature_program_has_a_dynamic_batch(run: Path, shards: Path, tmp_path: Path) -> None:
    import numpy as np

    from recsearch.export.raw import raw_serving_model

    out = tmp_path / "raw.pt2"
    assert (
        main(
            [
                "export",
                "--run",
                str(run),
                "--raw-features",
                str(shards),
                "--out",
                str(out),
                "--format",
                "export",
            ]
        )
        == 0
    )
    program = torch.export.load(str(out)).module()
    model, meta = load_trained_model(str(run))
    eager = raw_serving_model(model, meta, str(shards))
    known = torch.from_numpy(np.load(shards / "vocab" / "cat_3_values.npy").astype(np.int64))
    for b in (3, 50):
        g = torch.Generator().manual_seed(b)
        dense = torch.randint(-3, 1000, (b, 13), generator=g).double()
        dense[0, 2] = float("nan")
        cat = torch.randint(-1, 2**32, (b, 26), generator=g)
        cat[:, 3] = known[torch.randint(0, len(known), (b,), generator=g)]
        with torch.no_grad():
            torch.testing.assert_close(program(dense, cat), eager(dense, cat))


def test_vocab_lookup_maps_raw_values_as_preprocess_did() -> None:
    import numpy as np

    from recsearch.data.vocab import FieldVocab, IdMap
    from recsearch.export.raw import VocabLookup

    rng = np.random.default_rng(3)
    vocabs = [rng.choice(2**32, size=n, replace=False) for n in (1, 500, 0, 70_000)]
    vocabs[1][:2] = [0, 2**32 - 1]  # the extremes of the value range are values like any other
    lookup = VocabLookup(vocabs)
    scripted = torch.jit.script(lookup)
    queries, expected = [], []
    for v in vocabs:
        seen = rng.choice(v, size=300) if len(v) else rng.integers(0, 2**32, 300)
        q = np.concatenate([seen, rng.integers(0, 2**32, 300), [-1, -1]])
        queries.append(q.astype(np.int64))
        expected.append(IdMap(FieldVocab(values=v, counts=np.zeros(len(v) + 2))).lookup(q))
    raw = torch.from_numpy(np.stack(queries, axis=1))
    want = torch.from_numpy(np.stack(expected, axis=1)).long()
    assert torch.equal(lookup(raw), want) and torch.equal(scripted(raw), want)
    assert (want == 1).any() and (want == 0).any() and (want >= 2).any()
    # a value outside 32 bits is no field's value (not wrapped into another one): rare/unseen
    odd = torch.tensor([[2**32 + int(vocabs[0][0]), -7, 0, 2**40]])
    assert lookup(odd).tolist() == [[1, 1, 1, 1]]


@pytest.mark.integration
def test_raw_feature_export_scores_raw_lines_as_training_scored_the_shards(
    run: Path, shards: Path, raw_days: Path, tmp_path: Path
) -> None:
    # day 2 is outside the vocabulary days (0-1): its unseen values must map to the rare id
    unseen = assert_raw_export_scores_the_day(run, shards, raw_days, 2, tmp_path)
    assert unseen > 0


def _score_main():  # type: ignore[no-untyped-def]
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("score", REPO / "tools" / "score.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.main


def test_score_reads_files_gz_and_stdin_and_checks_lines_as_preprocess_does(
    run: Path, shards: Path, raw_days: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import gzip
    import io

    score = _score_main()
    model = tmp_path / "raw.pt"
    assert main(["export", "--run", str(run), "--raw-features", str(shards), "--out", str(model)]) == 0
    capsys.readouterr()
    lines = (raw_days / "day_2").read_text().splitlines(keepends=True)[:6]

    def scored(*args: str) -> list[str]:
        assert score([str(model), *args]) == 0
        return capsys.readouterr().out.split()

    plain = tmp_path / "day.txt"
    plain.write_text("".join(lines))
    want = scored(str(plain))
    assert len(want) == 6 and all(0 < float(x) < 1 for x in want)
    with gzip.open(tmp_path / "day.gz", "wt") as f:
        f.write("".join(lines))
    # another batch size may round differently in the matmuls: equal to float tolerance
    assert [float(x) for x in scored(str(tmp_path / "day.gz"), "--batch-size", "4")] == pytest.approx(
        [float(x) for x in want], abs=1e-6
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(lines)))
    assert scored() == want
    # serving requests carry no label, and hex may come upper-case
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("".join(line.split("\t", 1)[1].upper() for line in lines))
    assert scored(str(unlabeled)) == want

    bad = lines.copy()
    cols = bad[2].split("\t")
    cols[-3] = "abc"  # int("abc", 16) would read it as 00000abc; preprocess rejects it
    bad[2] = "\t".join(cols)
    bad[4] = "\n"
    (tmp_path / "bad.txt").write_text("".join(bad))
    assert score([str(model), str(tmp_path / "bad.txt")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.txt'}:3: categorical feature 23 is not an 8-digit hex string" in err, err
    got = scored(str(tmp_path / "bad.txt"), "--on-bad-line", "nan")
    assert got[2] == got[4] == "nan" and [got[i] for i in (0, 1, 3, 5)] == [want[i] for i in (0, 1, 3, 5)]

    ids = tmp_path / "ids.pt"
    assert main(["export", "--run", str(run), "--out", str(ids)]) == 0
    assert score([str(ids), str(plain)]) == 2
    assert "takes ids, not raw features" in capsys.readouterr().err


def test_raw_feature_export_refuses_shards_that_are_not_the_runs(
    run: Path, shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shutil

    def export(data: Path) -> str:
        assert (
            main(["export", "--run", str(run), "--raw-features", str(data), "--out", str(tmp_path / "m.pt")])
            == 2
        )
        return capsys.readouterr().err

    other = tmp_path / "other"
    shutil.copytree(shards / "vocab", other / "vocab")
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["vocab_key"] = "another"
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert "not the ones the run trained with" in export(other)
    manifest["vocab_key"] = json.loads((shards / "manifest.json").read_text())["vocab_key"]
    manifest["num_embeddings"][0] += 1
    (other / "manifest.json").write_text(json.dumps(manifest))
    err = export(other)
    assert "cat_0 has" in err and "pass the shards the run trained on" in err and "Traceback" not in err
    manifest["dataset"] = "tabular"
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert "converted from a table" in export(other)
    assert "has no manifest.json" in export(tmp_path / "none")
    assert not (tmp_path / "m.pt").exists()


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
