"""Raw-format parsing: the fast path, bad lines, and damaged files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from recsearch.data.criteo import MISSING_VALUE
from recsearch.data.rawio import RawFormatError, iter_parsed
from tests.conftest import write_lines


def line(label: str = "1", ints: list[str] | None = None, cats: list[str] | None = None) -> str:
    ints = ints if ints is not None else [str(i) for i in range(13)]
    cats = cats if cats is not None else [f"{i:08x}" for i in range(26)]
    return "\t".join([label, *ints, *cats])


def parse_all(path: Path, skip: bool = False, block_bytes: int = 1 << 20):
    blocks = list(iter_parsed(str(path), skip, block_bytes))
    return (
        np.concatenate([b.labels for b in blocks]),
        np.concatenate([b.dense for b in blocks]),
        np.concatenate([b.cats() for b in blocks]),
        sum(b.skipped for b in blocks),
    )


def test_parses_missing_negative_and_hex(tmp_path: Path) -> None:
    ints = ["", "-3", "7"] + ["0"] * 10
    cats = ["", "DEADbeef"] + ["0000000a"] * 24
    p = write_lines(tmp_path / "day_0", [line("0", ints, cats), line()])
    labels, dense, cats_out, skipped = parse_all(p)
    assert labels.tolist() == [0, 1] and skipped == 0
    np.testing.assert_allclose(dense[0, :3], [0, 0, np.log(8)], rtol=1e-6)
    assert cats_out[0, 0] == MISSING_VALUE and cats_out[0, 1] == 0xDEADBEEF and cats_out[0, 2] == 10


@pytest.mark.parametrize(
    "bad, reason",
    [
        (line(ints=["x"] + ["0"] * 12), "integer feature 0 is not an integer"),
        (line(ints=["1.5"] + ["0"] * 12), "integer feature 0 is not an integer"),
        (line(cats=["zzzzzzzz"] + ["00000000"] * 25), "categorical feature 0 is not an 8-digit hex"),
        (line(cats=["abc"] + ["00000000"] * 25), "categorical feature 0 is not an 8-digit hex"),
        (line(label="2"), "label must be 0 or 1"),
        (line(label=""), "label must be 0 or 1"),
        ("1\t2\t3", "expected 40 tab-separated columns, found 3"),
        ("", "expected 40 tab-separated columns, found 1"),
    ],
)
def test_bad_line_names_file_line_and_reason(tmp_path: Path, bad: str, reason: str) -> None:
    p = write_lines(tmp_path / "day_0", [line(), line(), bad, line()])
    with pytest.raises(RawFormatError, match=rf"day_0, line 3: {reason}"):
        parse_all(p)
    labels, _, _, skipped = parse_all(p, skip=True)
    assert skipped == 1 and len(labels) == 3


def test_bad_line_number_is_exact_across_blocks(tmp_path: Path) -> None:
    lines = [line() for _ in range(3000)]
    lines[2345] = line(label="7")
    p = write_lines(tmp_path / "day_0", lines)
    with pytest.raises(RawFormatError, match=r"line 2346: label"):
        parse_all(p, block_bytes=4096)  # many blocks
    labels, _, _, skipped = parse_all(p, skip=True, block_bytes=4096)
    assert skipped == 1 and len(labels) == 2999


def test_crlf_and_missing_final_newline_match_lf(tmp_path: Path) -> None:
    lines = [line(), line("0", [""] * 13, [""] * 26), line()]
    lf = parse_all(write_lines(tmp_path / "a", lines))
    crlf = parse_all(write_lines(tmp_path / "b", lines, newline="\r\n"))
    (tmp_path / "c").write_bytes("\n".join(lines).encode())
    no_final = parse_all(tmp_path / "c")
    for other in (crlf, no_final):
        for x, y in zip(lf, other, strict=True):
            np.testing.assert_array_equal(x, y)


def test_gzip_matches_plain_and_truncated_gzip_is_reported(tmp_path: Path) -> None:
    lines = [line() for _ in range(5000)]
    plain = write_lines(tmp_path / "day_0", lines)
    gz = tmp_path / "day_1.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for x, y in zip(parse_all(plain), parse_all(gz), strict=True):
        np.testing.assert_array_equal(x, y)
    cut = tmp_path / "day_2.gz"
    cut.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])
    with pytest.raises(RawFormatError, match="day_2.gz: gzip stream is truncated or corrupt"):
        parse_all(cut)


def test_empty_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "day_0").write_bytes(b"")
    with pytest.raises(RawFormatError, match="day_0: file is empty"):
        parse_all(tmp_path / "day_0")
