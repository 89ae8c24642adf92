"""synth: deterministic planted data whose truth is computable from the written rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recsearch.data.criteo import MISSING_VALUE
from recsearch.data.synth import _INT_MISSING, Teacher, make_teacher
from recsearch.data.synth_days import synth


def read_raw(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels, ints, cats = [], [], []
    for row in path.read_text().splitlines():
        f = row.split("\t")
        labels.append(int(f[0]))
        ints.append([int(x) if x else _INT_MISSING for x in f[1:14]])
        cats.append([int(x, 16) if x else MISSING_VALUE for x in f[14:]])
    return np.array(labels), np.array(ints, dtype=np.int64), np.array(cats, dtype=np.int64)


def test_deterministic_for_a_seed(tmp_path: Path, raw_days: Path) -> None:
    synth(str(tmp_path / "a"), days=3, rows_per_day=6000, preset="tiny", seed=11)
    for name in ("day_0", "day_2", "truth/teacher.json", "truth/day_1_prob.npy", "truth/bayes.json"):
        assert (tmp_path / "a" / name).read_bytes() == (raw_days / name).read_bytes()
    synth(str(tmp_path / "b"), days=1, rows_per_day=6000, preset="tiny", seed=12)
    assert (tmp_path / "b" / "day_0").read_bytes() != (raw_days / "day_0").read_bytes()


def test_teacher_probability_uses_only_written_values(raw_days: Path) -> None:
    teacher = Teacher.from_json(json.loads((raw_days / "truth" / "teacher.json").read_text()))
    for day in (0, 2):
        _, ints, cats = read_raw(raw_days / f"day_{day}")
        stored = np.load(raw_days / "truth" / f"day_{day}_prob.npy")[:, 0]
        np.testing.assert_allclose(teacher.prob(day, ints, cats), stored, rtol=1e-5, atol=1e-6)


def test_raw_rows_have_the_planted_structure(raw_days: Path) -> None:
    labels, ints, cats = read_raw(raw_days / "day_0")
    teacher = Teacher.from_json(json.loads((raw_days / "truth" / "teacher.json").read_text()))
    assert (ints == _INT_MISSING).any() and (ints[ints != _INT_MISSING] < 0).any()
    assert (cats == MISSING_VALUE).any()
    distinct = [len(set(cats[:, f][cats[:, f] != MISSING_VALUE])) for f in range(26)]
    assert min(distinct) <= 5 and max(distinct) >= 500  # from a handful to many values
    big = int(np.argmax(teacher.cardinality))
    _, counts = np.unique(cats[:, big][cats[:, big] != MISSING_VALUE], return_counts=True)
    assert counts.max() > 20 * np.median(counts)  # Zipf skew: a heavy head
    assert teacher.pairs and teacher.triples
    assert 0 < sum(s == 0 for s in teacher.cat_scale) < 26  # informative and pure-noise fields
    assert 0.05 < labels.mean() < 0.5


def test_bayes_limits_beat_a_constant_and_days_drift(raw_days: Path) -> None:
    bayes = json.loads((raw_days / "truth" / "bayes.json").read_text())
    for d in bayes["days"]:
        ctr = d["ctr"]
        constant_logloss = -(ctr * np.log(ctr) + (1 - ctr) * np.log(1 - ctr))
        assert d["bayes_logloss"] < constant_logloss - 0.03
        assert d["bayes_auc"] > 0.7
    teacher = make_teacher("tiny", 11)
    ints, cats = teacher.sample(0, 2000, np.random.default_rng(0))
    drift = np.abs(teacher.logit(0, ints, cats) - teacher.logit(5, ints, cats))
    assert 0.01 < drift.mean() < 1.0  # same rows, later day: slowly different clicks


def test_planted_shards_rerun_keeps_raw_days_and_shard_keys(tmp_path: Path) -> None:
    """A rerun of compare or quickstart must not rewrite the raw days: the shards' keys follow
    the raw files' mtimes, and checkpoints of unfinished jobs are tied to those keys."""
    from recsearch.data.planted import planted_shards

    out = str(tmp_path / "run")
    first = planted_shards(out, [0, 1], 2000, "tiny", 3)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run" / "raw").glob("day_*")}
    key = json.loads((tmp_path / "run" / "shards" / "manifest.json").read_text())["vocab_key"]
    again = planted_shards(out, [0, 1], 2000, "tiny", 3)
    assert again == first
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run" / "raw").glob("day_*")} == stamps
    assert json.loads((tmp_path / "run" / "shards" / "manifest.json").read_text())["vocab_key"] == key
    # More rows per day is other data: those days are written again.
    planted_shards(out, [0, 1], 2500, "tiny", 3)
    assert (tmp_path / "run" / "raw" / "day_0").stat().st_mtime_ns != stamps["day_0"]
