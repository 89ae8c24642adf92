"""Shared fixtures: tiny planted raw days and their shards, made once per session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from recsearch.data.preprocess import PreprocessOptions, preprocess
from recsearch.data.synth_days import synth

warnings.filterwarnings("ignore", message=".*is_fx_tracing.*")
REPO = Path(__file__).resolve().parents[1]
MOVIELENS = Path(os.environ.get("RECSEARCH_MOVIELENS", REPO / "data" / "movielens100k"))


@pytest.fixture(scope="session")
def raw_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny planted days in raw Criteo format (seed 11)."""
    out = tmp_path_factory.mktemp("raw")
    synth(str(out), days=3, rows_per_day=6000, preset="tiny", seed=11)
    return out


@pytest.fixture(scope="session")
def shards(raw_days: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    preprocess(str(raw_days), str(out), PreprocessOptions(days=(0, 1, 2), vocab_days=(0, 1), workers=1))
    return out


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes("".join(line + newline for line in lines).encode())
    return path


def run_group(cmd: list[str], timeout: int, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command in its own process group; on timeout kill the whole group (torchrun's
    workers included) so no orphan outlives the test."""
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def torchx(*args: str, timeout: int = 300, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``torchx ARGS`` with this interpreter's bin directory first on PATH (so jobs on host
    schedulers find ``torchrun`` and ``recsearch``) and one OpenMP thread per job."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    return run_group([sys.executable, "-m", "torchx.cli.main", *args], timeout=timeout, env=env, cwd=cwd)


_LOADER = """
import sys, torch, fbgemm_gpu
m = torch.jit.load(sys.argv[1])
x = torch.load(sys.argv[2], weights_only=True)
torch.save(m(x["dense"], x["values"], x["lengths"]), sys.argv[3])
bad = [k for k in sys.modules if k.split(".")[0] in ("torchrec", "recsearch")]
assert not bad, bad
"""


def serving_inputs(model, b: int, seed: int) -> dict[str, torch.Tensor]:
    """Random raw inputs of the served forward(dense, values, lengths) for ``model``'s tables."""
    g = torch.Generator().manual_seed(seed)
    tables = model.spec["tables"]
    return {
        "dense": torch.randint(-3, 100, (b, 13), generator=g).float(),
        "values": torch.cat([torch.randint(0, t["num_embeddings"], (b,), generator=g) for t in tables]),
        "lengths": torch.ones(b * len(tables), dtype=torch.int32),
    }


def assert_export_matches_eager(run: Path, exported: Path, tmp: Path) -> None:
    """The TorchScript file, loaded in a fresh process with torch + fbgemm_gpu only, gives
    exactly the eager model's probabilities."""
    from recsearch.export.serving import serving_model
    from recsearch.train.checkpoint import load_trained_model

    model, meta = load_trained_model(str(run))
    eager = serving_model(model, meta)
    x = serving_inputs(model, 33, seed=1)
    torch.save(x, tmp / "x.pt")
    cmd = [sys.executable, "-c", _LOADER, str(exported), str(tmp / "x.pt"), str(tmp / "y.pt")]
    subprocess.run(cmd, check=True)
    served = torch.load(tmp / "y.pt", weights_only=True)
    with torch.no_grad():
        expected = eager(x["dense"], x["values"], x["lengths"])
    assert torch.equal(served, expected)
    assert ((served > 0) & (served < 1)).all()


def assert_raw_export_scores_the_day(run: Path, shards: Path, raw_days: Path, day: int, tmp: Path) -> int:
    """``recsearch export --raw-features`` of ``run``, scored by tools/score.py (torch +
    fbgemm_gpu only) on the raw lines of ``day``, gives the trained model's probabilities on
    that day's shards, row by row; returns how many of the day's ids were rare or unseen."""
    import numpy as np

    from recsearch.data.criteo import OOV_ID
    from recsearch.data.shards import ShardInfo
    from recsearch.export.raw import shard_day_scores
    from recsearch.train.checkpoint import load_trained_model

    exported = tmp / "raw.pt"
    run_recsearch("export", "--run", str(run), "--raw-features", str(shards), "--out", str(exported))
    # torchrec and recsearch made unimportable: the file and the script need torch + fbgemm_gpu only
    block = "import sys, runpy; sys.modules.update(torchrec=None, recsearch=None); sys.argv = sys.argv[1:]; "
    score = block + "runpy.run_path(sys.argv[0], run_name='__main__')"
    cmd = [sys.executable, "-c", score, str(REPO / "tools" / "score.py"), str(exported),
           str(raw_days / f"day_{day}"), "--batch-size", "1000"]  # fmt: skip
    r = run_group(cmd, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    served = torch.tensor([float(x) for x in r.stdout.split()], dtype=torch.float64)
    model, _ = load_trained_model(str(run))
    expected = shard_day_scores(model, str(shards), day, batch=777)  # batches need not match
    assert served.shape == expected.shape
    torch.testing.assert_close(served, expected, rtol=0, atol=1e-6)
    info = ShardInfo.load(str(shards))
    ids = np.load(info.paths(day, "sparse"))[
        :, [info.sparse_names.index(t["feature"]) for t in model.spec["tables"]]
    ]
    return int((ids == OOV_ID).sum())


def train_processes(nproc: int, model: list[str], shards: Path, out: Path, *extra: str) -> dict:
    """``recsearch train MODEL`` under torchrun with ``nproc`` processes (gloo, one thread each)
    on days 0-1 of ``shards``, evaluated on day 2; its metrics.json."""
    import json

    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone",
           "-m", "recsearch", "train", *model, "--data", str(shards), "--train-days", "0-1",
           "--eval-day", "2", "--out", str(out), "eval_batch_size=1000", "warmup_steps=5",
           "sharding_types=[table_wise]", *extra]  # fmt: skip
    r = run_group(cmd, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]


def run_recsearch(
    *args: str, timeout: int = 600, check: bool = True, **kwargs
) -> subprocess.CompletedProcess[str]:
    """``python -m recsearch ARGS`` in its own process group, with this interpreter's bin on PATH
    (torchx's local scheduler starts jobs with it); asserts success unless ``check=False``."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", **kwargs.pop("env", {})}
    r = run_group([sys.executable, "-m", "recsearch", *args], timeout=timeout, env=env, **kwargs)
    if check:
        assert r.returncode == 0, f"recsearch {' '.join(args)} failed:\n{r.stderr[-3000:]}"
    return r
