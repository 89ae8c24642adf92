"""Score raw Criteo log lines with a model exported by `recsearch export --raw-features`.

    recsearch export --run RUN --raw-features DATA --out model.pt
    python tools/score.py model.pt day_23.gz > scores.txt
    zcat day_23.gz | head -1000 | python tools/score.py model.pt

Each input line is tab-separated: an optional label, 13 integer counts and 26 categorical
8-digit hex strings (any may be empty), checked by the rules `recsearch preprocess` applies.
Prints one click probability per input line, in input order (`nan` for a line that fails
the checks, with --on-bad-line nan; by default such a line stops the run at its file:line).
Needs only torch and fbgemm_gpu: the exported file carries the model and its vocabularies, so
this is all a serving stack has to reproduce.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator

import fbgemm_gpu  # noqa: F401  (registers the embedding ops the file calls)
import torch

NUM_DENSE, NUM_SPARSE = 13, 26
# The rules `recsearch preprocess` checks a raw line by (recsearch.data.rawio.check_line),
# restated here because this script imports only torch: a value it would reject is not scored.
_INT = re.compile(r"-?[0-9]+")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_INT64_MAX = 2**63 - 1


def check(cols: list[str]) -> str | None:
    """Why a split line is not a raw Criteo line (an optional label first), or None."""
    if len(cols) == NUM_DENSE + NUM_SPARSE + 1:
        if cols[0] not in ("0", "1"):
            return f"label must be 0 or 1, found {cols[0][:20]!r}"
        cols = cols[1:]
    if len(cols) != NUM_DENSE + NUM_SPARSE:
        return f"expected 39 tab-separated columns (40 with a label), found {len(cols)}"
    for i, x in enumerate(cols[:NUM_DENSE]):
        if x and (not _INT.fullmatch(x) or abs(int(x)) > _INT64_MAX):
            return f"integer feature {i} is not a 64-bit integer: {x[:20]!r}"
    for i, x in enumerate(cols[NUM_DENSE:]):
        if x and not _HEX8.fullmatch(x):
            return f"categorical feature {i} is not an 8-digit hex string: {x[:20]!r}"
    return None


def parse(
    lines: list[str], where: list[str] | None = None, skip_bad: bool = False
) -> tuple[torch.Tensor, ...]:
    """Raw lines -> (dense float64 B x 13, NaN if empty; categorical int64 B x 26, -1 if
    empty; bad: bool B, lines that failed the checks). A bad line raises ValueError naming
    ``where[k]`` unless ``skip_bad``; then its row holds only empty fields."""
    d_rows, c_rows, bad = [], [], []
    empty = [""] * (NUM_DENSE + NUM_SPARSE)
    for k, line in enumerate(lines):
        cols = line.rstrip("\r\n").split("\t")
        reason = check(cols)
        if reason is not None:
            if not skip_bad:
                at = where[k] if where else f"line {k + 1}"
                raise ValueError(f"{at}: {reason} (pass --on-bad-line nan to score such lines as nan)")
            cols = empty
        cols = cols[-(NUM_DENSE + NUM_SPARSE) :]
        bad.append(reason is not None)
        d_rows.append([float(int(x)) if x else math.nan for x in cols[:NUM_DENSE]])
        c_rows.append([int(x, 16) if x else -1 for x in cols[NUM_DENSE:]])
    dense = torch.tensor(d_rows, dtype=torch.float64).reshape(len(lines), NUM_DENSE)
    cat = torch.tensor(c_rows, dtype=torch.int64).reshape(len(lines), NUM_SPARSE)
    return dense, cat, torch.tensor(bad, dtype=torch.bool)


def numbered_lines(paths: list[str]) -> Iterator[tuple[str, str]]:
    """(``file:line``, line) of every line of ``paths`` (``.gz`` read as gzip; none: stdin)."""
    if not paths:
        for n, line in enumerate(sys.stdin, 1):
            yield f"<stdin>:{n}", line
    for p in paths:
        opener = gzip.open if p.endswith(".gz") else open
        with opener(p, "rt") as f:  # type: ignore[operator]
            for n, line in enumerate(f, 1):
                yield f"{p}:{n}", line


def batches(lines: Iterable[tuple[str, str]], size: int) -> Iterator[tuple[list[str], list[str]]]:
    """(where, lines) in batches of ``size``."""
    where: list[str] = []
    batch: list[str] = []
    for w, line in lines:
        where.append(w)
        batch.append(line)
        if len(batch) == size:
            yield where, batch
            where, batch = [], []
    if batch:
        yield where, batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="file from `recsearch export --raw-features`")
    p.add_argument("inputs", nargs="*", help="raw Criteo files (.gz read as gzip); none: stdin")
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument(
        "--on-bad-line",
        choices=["error", "nan"],
        default="error",
        help="a line preprocess would reject: stop with its file:line (default), or print nan for it",
    )
    a = p.parse_args(argv)
    try:
        model = torch.jit.load(a.model)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"score: {a.model} is not a TorchScript file from `recsearch export`: {e}", file=sys.stderr)
        return 2
    skip_bad = a.on_bad_line == "nan"
    try:
        with torch.no_grad():
            for where, lines in batches(numbered_lines(a.inputs), max(1, a.batch_size)):
                dense, cat, bad = parse(lines, where, skip_bad)
                try:
                    probs = model(dense, cat)
                except RuntimeError as e:
                    last = str(e).strip().splitlines()[-1]
                    if "argument" in last:  # the id front: forward(dense, values, lengths)
                        raise ValueError(
                            f"{a.model} takes ids, not raw features: export it with --raw-features"
                        ) from None
                    raise ValueError(f"{a.model} failed on {where[0]}..{where[-1]}: {last}") from None
                probs = probs.double().masked_fill(bad, math.nan)
                sys.stdout.write("".join(f"{p:.9g}\n" for p in probs.tolist()))
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
