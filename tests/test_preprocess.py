"""preprocess: shards, vocabularies, manifest, resume and byte-identical reruns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from recsearch.cli import main
from recsearch.data.criteo import NUM_SPARSE, OOV_ID, dense_transform
from recsearch.data.preprocess import PreprocessOptions, load_vocab, preprocess
from recsearch.data.rawio import RawFormatError
from tests.test_rawio import line


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every output file's bytes (not the loader's cache of verified files)."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".verified.json"]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def reference_parse(path: Path) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """An independent, plain-Python reading of a raw day."""
    labels, ints, cats = [], [], []
    for row in path.read_text().splitlines():
        f = row.split("\t")
        labels.append(int(f[0]))
        ints.append([int(x) if x else 0 for x in f[1:14]])
        cats.append(f[14:])
    return np.array(labels), np.array(ints), cats


def test_shards_layout_dtypes_and_values(raw_days: Path, shards: Path) -> None:
    m = json.loads((shards / "manifest.json").read_text())
    labels, ints, cats = reference_parse(raw_days / "day_2")
    assert m["days"]["2"]["rows"] == len(labels) == 6000
    dense = np.load(shards / "day_2_dense.npy")
    sparse = np.load(shards / "day_2_sparse.npy")
    lab = np.load(shards / "day_2_labels.npy")
    assert (dense.dtype, sparse.dtype, lab.dtype) == (np.float32, np.int32, np.int32)
    assert dense.shape == (6000, 13) and sparse.shape == (6000, 26) and lab.shape == (6000, 1)
    np.testing.assert_array_equal(lab[:, 0], labels)
    np.testing.assert_array_equal(dense, dense_transform(ints))
    # ids: missing -> 0, every present value maps through the vocabulary or to OOV
    vocabs = load_vocab(str(shards))
    for f in (0, 7, 25):
        lookup = {int(v): i + 2 for i, v in enumerate(vocabs[f].values)}
        expected = [0 if not c[f] else lookup.get(int(c[f], 16), OOV_ID) for c in cats]
        np.testing.assert_array_equal(sparse[:, f], expected)


def test_vocab_is_frequency_ranked_over_vocab_days_and_capped(raw_days: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    preprocess(
        str(raw_days), str(out), PreprocessOptions(days=(0, 1, 2), vocab_days=(0,), max_rows_per_table=50)
    )
    m = json.loads((out / "manifest.json").read_text())
    _, _, cats = reference_parse(raw_days / "day_0")
    vocabs = load_vocab(str(out))
    assert max(m["num_embeddings"]) <= 50
    for f in range(NUM_SPARSE):
        counts: dict[int, int] = {}
        for c in cats:
            if c[f]:
                counts[int(c[f], 16)] = counts.get(int(c[f], 16), 0) + 1
        ranked = sorted(counts, key=lambda v: (-counts[v], v))
        kept = ranked[:48]
        assert vocabs[f].values.tolist() == kept
        assert vocabs[f].counts[2:].tolist() == [counts[v] for v in kept]
        assert vocabs[f].counts[OOV_ID] == sum(counts[v] for v in ranked[48:])
        assert m["distinct_values"][f] == len(counts)
        assert np.all(np.diff(vocabs[f].counts[2:]) <= 0)
    # days outside the vocabulary days see unseen values -> OOV id 1
    sparse2 = np.load(out / "day_2_sparse.npy")
    assert (sparse2 == OOV_ID).any()
    assert sparse2.max() < 50


def test_rerun_skips_verified_days_and_redoes_damaged_ones(
    raw_days: Path, shards: Path, tmp_path: Path
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(shards, out)
    before = tree_bytes(out)
    # damage: one shard corrupted, one day's record gone, a stray temporary file
    with open(out / "day_1_sparse.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xff")
    (out / "day_2.done.json").unlink()
    (out / "manifest.json").unlink()
    (out / ".tmp-999999999-day_0_dense.npy").write_bytes(b"partial")
    opts = PreprocessOptions(days=(0, 1, 2), vocab_days=(0, 1), workers=1)
    preprocess(str(raw_days), str(out), opts)
    assert tree_bytes(out) == before


def test_parallel_workers_give_identical_bytes(raw_days: Path, shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "par"
    preprocess(str(raw_days), str(out), PreprocessOptions(days=(0, 1, 2), vocab_days=(0, 1), workers=2))
    assert tree_bytes(out) == tree_bytes(shards)


def test_gzip_days_give_the_same_shards(raw_days: Path, shards: Path, tmp_path: Path) -> None:
    import gzip

    raw = tmp_path / "raw"
    raw.mkdir()
    for d in range(3):
        (raw / f"day_{d}.gz").write_bytes(gzip.compress((raw_days / f"day_{d}").read_bytes()))
    out = tmp_path / "out"
    preprocess(str(raw), str(out), PreprocessOptions(days=(0, 1, 2), vocab_days=(0, 1), workers=1))
    for d in range(3):
        for kind in ("dense", "sparse", "labels"):
            name = f"day_{d}_{kind}.npy"
            assert (out / name).read_bytes() == (shards / name).read_bytes()


def test_skip_mode_counts_bad_lines_in_manifest(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "day_0").write_text("\n".join([line(), "garbage", line(label="0"), line(label="5")]) + "\n")
    (raw / "day_1").write_text(line() + "\n")
    out = tmp_path / "out"
    with pytest.raises(RawFormatError, match="day_0, line 2: expected 40"):
        preprocess(str(raw), str(out), PreprocessOptions(days=(0, 1), vocab_days=(0,)))
    m = preprocess(str(raw), str(out), PreprocessOptions(days=(0, 1), vocab_days=(0,), on_bad_line="skip"))
    assert m["days"]["0"] == {**m["days"]["0"], "rows": 2, "skipped_lines": 2}
    assert m["skipped_lines"] == 2
    # a day whose every line is skipped stops the run: no empty day in the shards
    (raw / "day_1").write_text("garbage\nmore garbage\n")
    with pytest.raises(RawFormatError, match=r"day_1: no rows left \(2 line\(s\) skipped as malformed\)"):
        preprocess(
            str(raw),
            str(tmp_path / "o2"),
            PreprocessOptions(days=(0, 1), vocab_days=(0,), on_bad_line="skip"),
        )


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw_days: Path) -> None:
    assert (
        main(["preprocess", "--input", str(raw_days), "--output", str(tmp_path / "o"), "--days", "0-5"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no raw file for day(s) 3-5" in err and "days present: 0-2" in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "day_0").write_bytes(b"")
    assert main(["preprocess", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o2")]) == 2
    assert "day_0: file is empty" in capsys.readouterr().err
    assert (
        main(
            [
                "preprocess",
                "--input",
                str(raw_days),
                "--output",
                str(tmp_path / "o3"),
                "--days",
                "0-1",
                "--vocab-days",
                "0-2",
            ]
        )
        == 2
    )
    assert "--vocab-days [2] are not among --days 0-1" in capsys.readouterr().err
