"""Train every zoo model on a planted dataset and on MovieLens-100K; write a markdown table.

    python tools/zoo_results.py [--rows-per-day 100000] [--days 4] [--out docs/results.md]

Planted data: `recsearch synth --preset small --seed 0`, days 0..N-2 train, day N-1 eval,
with the eval day's Bayes-optimal logloss/AUC from the teacher. MovieLens-100K: the
`configs/datasets/movielens100k.yaml` conversion, days 0-3 train, day 4 eval.
Each model goes through `recsearch train` (one process, DMP) with the config below.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ["lr", "fm", "wide_deep", "deepfm", "dlrm", "dcn_v2", "xdeepfm", "autoint"]


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "recsearch", *args], check=True, capture_output=True, cwd=REPO)


def train_all(shards: str, train_days: str, eval_day: int, work: Path, overrides: list[str]) -> list[dict]:
    rows = []
    for m in MODELS:
        out = work / m
        run(
            "train",
            "--model",
            m,
            "--data",
            shards,
            "--train-days",
            train_days,
            "--eval-day",
            str(eval_day),
            "--out",
            str(out),
            *overrides,
        )
        rows.append(json.loads((out / "metrics.json").read_text()))
        print(f"  {m}: auc {rows[-1]['auc']:.4f}", flush=True)
    return rows


def table(rows: list[dict], bayes: dict | None) -> list[str]:
    lines = [
        "| model | AUC | logloss | NE | FLOPs/example | params | embedding params |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['auc']:.4f} | {r['logloss']:.4f} | {r['ne']:.4f} | "
            f"{r['flops']:,.0f} | {r['params']:,} | {r['embedding_params']:,} |"
        )
    if bayes:
        lines.append(
            f"| *Bayes limit (teacher)* | {bayes['bayes_auc']:.4f} | {bayes['bayes_logloss']:.4f} | "
            f"{bayes['ne']:.4f} | | | |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows-per-day", type=int, default=100_000)
    p.add_argument("--days", type=int, default=4)
    p.add_argument("--out", default=str(REPO / "docs" / "results.md"))
    p.add_argument("--movielens", default=str(REPO / "data" / "movielens100k"))
    a = p.parse_args()
    overrides = ["batch_size=512", "warmup_steps=100", "eval_batch_size=8192"]
    work = Path(tempfile.mkdtemp(prefix="zoo_"))
    try:
        run(
            "synth",
            "--output",
            str(work / "raw"),
            "--days",
            str(a.days),
            "--rows-per-day",
            str(a.rows_per_day),
            "--preset",
            "small",
            "--seed",
            "0",
        )
        run("preprocess", "--input", str(work / "raw"), "--output", str(work / "shards"))
        bayes = json.loads((work / "raw" / "truth" / "bayes.json").read_text())["days"][-1]
        import math

        ctr = bayes["ctr"]
        bayes["ne"] = bayes["bayes_logloss"] / -(ctr * math.log(ctr) + (1 - ctr) * math.log(1 - ctr))
        print("planted data:")
        synth_rows = train_all(
            str(work / "shards"), f"0-{a.days - 2}", a.days - 1, work / "synth_runs", overrides
        )
        run(
            "convert",
            "--schema",
            str(REPO / "configs/datasets/movielens100k.yaml"),
            "--data-root",
            a.movielens,
            "--output",
            str(work / "ml"),
        )
        print("MovieLens-100K:")
        ml_rows = train_all(str(work / "ml"), "0-3", 4, work / "ml_runs", overrides)
        text = [
            "# Results: baseline zoo",
            "",
            f"Produced by `python tools/zoo_results.py --rows-per-day {a.rows_per_day} --days {a.days}` "
            f"(one process, DMP; config: {' '.join(overrides)}; other settings default).",
            "FLOPs are forward FLOPs per example from `torch.utils.flop_counter` "
            "(embedding lookups count 0).",
            "",
            f"## Planted data: `synth --preset small --seed 0`, {a.days} days x {a.rows_per_day:,} rows",
            "",
            f"Train days 0-{a.days - 2}, eval day {a.days - 1} (CTR {bayes['ctr']:.4f}). The last row is the "
            "teacher's own probabilities on the eval day: the limit no model can beat.",
            "",
            *table(synth_rows, bayes),
            "",
            "## MovieLens-100K (real; rating > 3 is a click)",
            "",
            "Ratings cut chronologically into 5 equal days; train days 0-3, eval day 4.",
            "",
            *table(ml_rows, None),
            "",
        ]
        Path(a.out).write_text("\n".join(text))
        print(f"wrote {a.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
