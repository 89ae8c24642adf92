"""Score raw Criteo log lines with a model exported by `recsearch export --raw-features`.

    recsearch export --run RUN --raw-features DATA --out model.pt
    python tools/score.py model.pt day_23.gz > scores.txt
    zcat day_23.gz | head -1000 | python tools/score.py model.pt

Each input line is tab-separated: an optional label, 13 integer counts and 26 categorical
8-digit hex strings (any may be empty). Prints one click probability per line, in input
order. Needs only torch and fbgemm_gpu: the exported file carries the model and its
vocabularies, so this is all a serving stack has to reproduce.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO

import fbgemm_gpu  # noqa: F401  (registers the embedding ops the file calls)
import torch

NUM_DENSE, NUM_SPARSE = 13, 26


def parse(lines: list[str], first: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw lines (numbered from ``first`` in errors) -> (dense float64 B x 13, NaN if empty;
    categorical int64 B x 26, -1 if empty)."""
    dense = torch.empty(len(lines), NUM_DENSE, dtype=torch.float64)
    cat = torch.empty(len(lines), NUM_SPARSE, dtype=torch.int64)
    d_rows, c_rows = [], []
    for n, line in enumerate(lines, first):
        cols = line.rstrip("\r\n").split("\t")
        if len(cols) == NUM_DENSE + NUM_SPARSE + 1:
            cols = cols[1:]  # the label
        if len(cols) != NUM_DENSE + NUM_SPARSE:
            raise ValueError(f"line {n}: {len(cols)} fields; expected 39 (or 40 with a label)")
        try:
            d_rows.append([float(x) if x else float("nan") for x in cols[:NUM_DENSE]])
            c_rows.append([int(x, 16) if x else -1 for x in cols[NUM_DENSE:]])
        except ValueError:
            raise ValueError(f"line {n}: a count that is not a number or a value that is not hex") from None
    if lines:
        dense[:] = torch.tensor(d_rows, dtype=torch.float64)
        cat[:] = torch.tensor(c_rows, dtype=torch.int64)
    return dense, cat


def batches(files: Iterable[IO[str]], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for f in files:
        for line in f:
            if line.strip():
                batch.append(line)
                if len(batch) == size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def open_inputs(paths: list[str]) -> Iterator[IO[str]]:
    if not paths:
        yield sys.stdin
    for p in paths:
        opener = gzip.open if p.endswith(".gz") else open
        with opener(p, "rt") as f:  # type: ignore[operator]
            yield f


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="file from `recsearch export --raw-features`")
    p.add_argument("inputs", nargs="*", help="raw Criteo files (.gz read as gzip); none: stdin")
    p.add_argument("--batch-size", type=int, default=4096)
    a = p.parse_args(argv)
    try:
        model = torch.jit.load(a.model)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"score: {a.model} is not a TorchScript file from `recsearch export`: {e}", file=sys.stderr)
        return 2
    out, done = sys.stdout, 0
    try:
        with torch.no_grad():
            for lines in batches(open_inputs(a.inputs), max(1, a.batch_size)):
                inputs = parse(lines, done + 1)
                try:
                    probs = model(*inputs)
                except RuntimeError as e:
                    raise ValueError(
                        f"{a.model} does not take raw features (export it with --raw-features): "
                        f"{str(e).strip().splitlines()[-1]}"
                    ) from None
                out.write("".join(f"{p:.9g}\n" for p in probs.tolist()))
                done += len(lines)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
