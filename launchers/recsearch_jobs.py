"""torchx components for recsearch's stages.

Each component calls the same stage function as ``recsearch <stage>``; training wraps
torchx's ``dist.ddp`` (torchrun) so it runs with N processes. Examples::

    torchx run -s local_cwd launchers/recsearch_jobs.py:train --data shards/ --train_days 0-3 \\
        --eval_day 4 --out runs/dlrm --model dlrm -j 1x2
    torchx run --dryrun -s slurm launchers/recsearch_jobs.py:train --data /shared/shards ...
    torchx run -s local_cwd launchers/recsearch_jobs.py:search --method distdnas --data shards/ \
        --train_days 0-3 --val_day 4 --out search/ -- preset=small
    torchx run -s local_cwd launchers/recsearch_jobs.py:search_job --search_dir search/ --job day_3
"""

import torchx.specs as specs
from torchx.components.dist import ddp
from torchx.components.utils import python

IMAGE = "ghcr.io/pytorch/torchx:0.7.0"


def preprocess(
    input: str,
    out: str,
    days: str = "",
    vocab_days: str = "",
    workers: int = 2,
    cpu: int = 2,
    memMB: int = 8192,
    image: str = IMAGE,
) -> specs.AppDef:
    """Raw Criteo days -> per-day shards (`recsearch preprocess`); a rerun resumes.

    Args:
        input: directory of day_N / day_N.gz files (shared storage for remote schedulers).
        out: shard directory to write.
        days: days to convert, e.g. 0-23 (default: all found).
        vocab_days: days whose values build the vocabularies (default: all but the last).
        workers: parsing processes.
        cpu: CPUs of this job.
        memMB: memory in MB.
        image: container image (for container schedulers).
    """
    args = ["preprocess", "--input", input, "--out", out, "--workers", str(workers)]
    args += ["--days", days] if days else []
    args += ["--vocab-days", vocab_days] if vocab_days else []
    return python(*args, m="recsearch", name="recsearch-preprocess", image=image, cpu=cpu, memMB=memMB)


def train(
    *overrides: str,
    data: str,
    train_days: str,
    eval_day: int,
    out: str,
    model: str = "dlrm",
    arch: str = "",
    preset: str = "",
    config: str = "",
    j: str = "1x2",
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    image: str = IMAGE,
    rdzv_port: int = 29500,
    max_retries: int = 0,
) -> specs.AppDef:
    """Train a zoo model or an architecture JSON with DMP across nodes x processes.

    Args:
        overrides: TrainConfig overrides as key=value (e.g. batch_size=2048).
        data: shard directory.
        train_days: days to train on, e.g. 0-3.
        eval_day: held-out day to evaluate on.
        out: run directory (metrics.json, checkpoint/, arch.json).
        model: zoo model name (ignored when arch is given).
        arch: architecture JSON file.
        preset: train preset (configs/train/NAME.yaml).
        config: YAML file of TrainConfig keys.
        j: nodes x processes per node, e.g. 1x2.
        cpu: CPUs per replica.
        gpu: GPUs per replica.
        memMB: memory per replica in MB.
        image: container image (for container schedulers).
        rdzv_port: rendezvous port of the c10d rendezvous.
        max_retries: times the scheduler retries a failed job.
    """
    args = ["train", "--data", data, "--train-days", train_days, "--eval-day", str(eval_day), "--out", out]
    args += ["--arch", arch] if arch else ["--model", model]
    args += ["--preset", preset] if preset else []
    args += ["--config", config] if config else []
    return ddp(
        *args,
        *overrides,
        m="recsearch",
        name="recsearch-train",
        j=j,
        cpu=cpu,
        gpu=gpu,
        memMB=memMB,
        image=image,
        rdzv_port=rdzv_port,
        max_retries=max_retries,
    )


def search(
    *overrides: str,
    method: str,
    data: str,
    train_days: str,
    val_day: int,
    out: str,
    preset: str = "",
    config: str = "",
    scheduler: str = "local_cwd",
    scheduler_args: str = "",
    workers: int = 2,
    threads_per_job: int = 0,
    cpu: int = 2,
    image: str = IMAGE,
    memMB: int = 16384,
) -> specs.AppDef:
    """Run a search method under the contract (`recsearch search METHOD ...`) as one job.

    Methods that fan out work (e.g. one job per day) submit those jobs themselves through
    the shared job pool, with the scheduler given here.

    Args:
        overrides: config overrides as key=value.
        method: a registered search method (`recsearch search ls`).
        data: shard directory (shared storage for remote schedulers).
        train_days: days to train on, e.g. 0-3.
        val_day: held-out day for the method's architecture decisions.
        out: search directory (arch.json, search.json, report.md).
        preset: the method's preset (configs/search/METHOD/NAME.yaml).
        config: YAML file of config keys.
        scheduler: torchx scheduler of the fanned-out jobs.
        scheduler_args: that scheduler's options, k=v,k=v (slurm: partition=cpu).
        workers: fanned-out jobs at a time on a local scheduler.
        threads_per_job: intra-op threads (and CPUs) per fanned-out job (0: cores / workers
            locally, all cores elsewhere).
        cpu: CPUs of this job.
        image: container image (for container schedulers).
        memMB: memory in MB.
    """
    args = ["search", method, "--data", data, "--train-days", train_days, "--val-day", str(val_day)]
    args += ["--out", out, "--scheduler", scheduler, "--workers", str(workers)]
    args += ["--threads-per-job", str(threads_per_job)]
    args += ["--scheduler-args", scheduler_args] if scheduler_args else []
    args += ["--preset", preset] if preset else []
    args += ["--config", config] if config else []
    return python(
        *args, *overrides, m="recsearch", name=f"recsearch-search-{method}", image=image, cpu=cpu, memMB=memMB
    )


def search_job(
    search_dir: str, job: str, threads: int = 1, image: str = IMAGE, memMB: int = 8192
) -> specs.AppDef:
    """One job of a search that fans out (what the shared job pool submits).

    The search directory must have been prepared by `recsearch search METHOD` (request.json
    and the method's plan); the job writes its results inside SEARCH_DIR.

    Args:
        search_dir: search directory.
        job: the job's name, e.g. day_3.
        threads: intra-op threads of the job.
        image: container image (for container schedulers).
        memMB: memory in MB.
    """
    app = python(
        "--search-dir",
        search_dir,
        "--job",
        job,
        m="recsearch.search.job",
        name=f"recsearch-search-job-{job.replace('_', '-')}",
        image=image,
        cpu=threads,
        memMB=memMB,
    )
    app.roles[0].env["OMP_NUM_THREADS"] = str(threads)
    return app


def evaluate(run: str, data: str, day: int, image: str = IMAGE, memMB: int = 4096) -> specs.AppDef:
    """Evaluate a trained run on a shard day (AUC, logloss, NE).

    Args:
        run: run directory written by train.
        data: shard directory.
        day: day to evaluate on.
        image: container image.
        memMB: memory in MB.
    """
    return python(
        "eval",
        "--run",
        run,
        "--data",
        data,
        "--day",
        str(day),
        m="recsearch",
        name="recsearch-eval",
        image=image,
        memMB=memMB,
    )


def profile(
    data: str, model: str = "dlrm", arch: str = "", out: str = "", image: str = IMAGE
) -> specs.AppDef:
    """Profile a model: FLOPs, parameters, latency at batch sizes 1/64/512.

    Args:
        data: shard directory.
        model: zoo model name (ignored when arch is given).
        arch: architecture JSON file.
        out: JSON file for the result.
        image: container image.
    """
    args = ["profile", "--data", data, *(["--arch", arch] if arch else ["--model", model])]
    if out:
        args += ["--out", out]
    return python(*args, m="recsearch", name="recsearch-profile", image=image)


def export(run: str, out: str, format: str = "torchscript", image: str = IMAGE) -> specs.AppDef:
    """Export a trained run for serving.

    Args:
        run: run directory written by train.
        out: output file.
        format: torchscript or export.
        image: container image.
    """
    return python(
        "export",
        "--run",
        run,
        "--out",
        out,
        "--format",
        format,
        m="recsearch",
        name="recsearch-export",
        image=image,
    )
