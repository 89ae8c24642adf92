"""One day on all cores: byte ranges of a day parsed in parallel, the same shards as one worker;
new days appended against the saved vocabulary."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recsearch.cli import main
from recsearch.data.append import append_days
from recsearch.data.preprocess import PreprocessOptions, preprocess
from recsearch.data.rawio import RawFormatError, split_lines
from tests.test_preprocess import tree_bytes
from tests.test_rawio import line

SMALL_RANGES = 50_000  # bytes: the tiny days (~1.5 MB) split into many ranges


def _opts(days: tuple[int, ...], vocab: tuple[int, ...], workers: int, **kw) -> PreprocessOptions:
    return PreprocessOptions(days=days, vocab_days=vocab, workers=workers, min_range_bytes=SMALL_RANGES, **kw)


def test_ranges_are_whole_lines_covering_the_file(raw_days: Path) -> None:
    path = raw_days / "day_0"
    data = path.read_bytes()
    ranges = split_lines(str(path), len(data), 7)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data) and len(ranges) == 7
    for (_, b), (c, _) in zip(ranges, ranges[1:], strict=False):
        assert b == c and data[b - 1 : b] == b"\n"  # each range ends where a line ends
    assert sum(data[a:b].count(b"\n") for a, b in ranges) == data.count(b"\n")


def test_one_day_split_among_workers_gives_the_same_bytes(raw_days: Path, tmp_path: Path) -> None:
    one = tmp_path / "one"
    preprocess(str(raw_days), str(one), _opts((0, 1, 2), (0, 1), workers=1))
    many = tmp_path / "many"
    preprocess(str(raw_days), str(many), _opts((0, 1, 2), (0, 1), workers=3))  # 12 ranges a day
    assert tree_bytes(many) == tree_bytes(one)
    # a .gz day is one stream, parsed in threads: the same shards again
    gz = tmp_path / "gz"
    gz.mkdir()
    for d in (0, 1, 2):
        (gz / f"day_{d}.gz").write_bytes(gzip.compress((raw_days / f"day_{d}").read_bytes()))
    zipped = tmp_path / "zipped"
    preprocess(str(gz), str(zipped), _opts((0, 1, 2), (0, 1), workers=3))
    same = [n for n in tree_bytes(one) if n.startswith("day_") and n.endswith(".npy")]
    assert {n: tree_bytes(zipped)[n] for n in same} == {n: tree_bytes(one)[n] for n in same}


def test_bad_lines_in_later_ranges_are_numbered_in_the_file(raw_days: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = (raw_days / "day_0").read_text().splitlines()
    rows[4321] = "garbage"  # line 4322, in a later range
    rows[17] = line(label="7")
    (raw / "day_0").write_text("\n".join(rows) + "\n")
    with pytest.raises(RawFormatError, match=r"day_0, line 18: label must be 0 or 1"):
        preprocess(str(raw), str(tmp_path / "o"), _opts((0,), (0,), workers=3))
    rows[17] = rows[16]
    (raw / "day_0").write_text("\n".join(rows) + "\n")
    with pytest.raises(RawFormatError, match=r"day_0, line 4322: expected 40 tab-separated columns"):
        preprocess(str(raw), str(tmp_path / "o2"), _opts((0,), (0,), workers=3))
    skipped = preprocess(str(raw), str(tmp_path / "o3"), _opts((0,), (0,), workers=3, on_bad_line="skip"))
    single = preprocess(str(raw), str(tmp_path / "o4"), _opts((0,), (0,), workers=1, on_bad_line="skip"))
    assert skipped["days"]["0"]["skipped_lines"] == 1 and skipped["days"] == single["days"]


@pytest.mark.integration
def test_parallel_preprocess_resumes_after_kills(raw_days: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; from recsearch.cli import main; sys.exit(main(sys.argv[1:]))"]
    args = ["preprocess", "--input", str(raw_days), "--days", "0-2", "--vocab-days", "0-1", "--workers", "2"]
    args += ["--min-range-bytes", str(SMALL_RANGES)]
    ref = tmp_path / "ref"
    preprocess(str(raw_days), str(ref), _opts((0, 1, 2), (0, 1), workers=1))
    env = dict(os.environ)
    for point in ("day-parsed:3", "shards-committed:1", "day-record-written:2", "before-manifest:1"):
        out = tmp_path / point.replace(":", "_")
        killed = subprocess.run([*cmd, *args, "--out", str(out)], capture_output=True, text=True,
                                env={**env, "RECSEARCH_KILL_AT": point})  # fmt: skip
        # a killed worker: one line that says how to go on; a killed command: SIGKILL
        assert killed.returncode in (2, -signal.SIGKILL), (point, killed.stderr[-2000:])
        if killed.returncode == 2:
            assert "worker process died" in killed.stderr and "Traceback" not in killed.stderr
        subprocess.run([*cmd, *args, "--out", str(out)], check=True, capture_output=True, env=env)
        assert tree_bytes(out) == tree_bytes(ref), point


def test_an_appended_day_gets_the_existing_ids(raw_days: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    preprocess(str(raw_days), str(full), _opts((0, 1, 2), (0, 1), workers=2))
    grown = tmp_path / "grown"
    preprocess(str(raw_days), str(grown), _opts((0, 1), (0, 1), workers=2))
    before = tree_bytes(grown)
    raw2 = tmp_path / "raw2"  # only the new day is there: no other day is read
    raw2.mkdir()
    shutil.copy2(raw_days / "day_2", raw2 / "day_2")  # the same file: size and mtime kept
    append_days(str(raw2), str(grown), [2], workers=2)
    assert tree_bytes(grown) == tree_bytes(full)  # as if all three days had been preprocessed
    assert {k: v for k, v in tree_bytes(grown).items() if k in before and k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"
    }
    with pytest.raises(ValueError, match=r"day\(s\) 2 are already in"):
        append_days(str(raw2), str(grown), [2])
    with pytest.raises(ValueError, match="--max-rows-per-table 99 differs from"):
        append_days(str(raw2), str(grown), [2], max_rows_per_table=99)


def test_append_through_the_cli_then_train(
    raw_days: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    args = ["preprocess", "--input", str(raw_days), "--out", str(out)]
    assert main([*args, "--days", "0-1", "--vocab-days", "0"]) == 0
    assert main([*args, "--days", "2", "--append", "--vocab-days", "1"]) == 2
    assert "drop --vocab-days" in capsys.readouterr().err
    assert main([*args, "--days", "2", "--append"]) == 0
    assert "it now holds days 0-2" in capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    assert sorted(m["days"]) == ["0", "1", "2"] and m["options"]["vocab_days"] == "0"
    run = ["--data", str(out), "--train-days", "0-1", "--eval-day", "2", "--out", str(tmp_path / "r")]
    assert main(["train", "--model", "fm", *run, "--preset", "tiny"]) == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["auc"] > 0.6
