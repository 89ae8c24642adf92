"""torchx components for recsearch's stages.

Each component calls the same stage function as ``recsearch <stage>``; training wraps
torchx's ``dist.ddp`` (torchrun) so it runs with N processes. Examples::

    torchx run -s local_cwd launchers/recsearch_jobs.py:train --data shards/ --train_days 0-3 \\
        --eval_day 4 --out runs/dlrm --model dlrm -j 1x2
    torchx run --dryrun -s slurm launchers/recsearch_jobs.py:train --data /shared/shards ...
    torchx run -s local_cwd launchers/recsearch_jobs.py:distdnas_search_job --search_dir search/ \
        --data shards/ --name day_3 --days 3
"""

import torchx.specs as specs
from torchx.components.dist import ddp
from torchx.components.utils import python

IMAGE = "ghcr.io/pytorch/torchx:0.7.0"


def train(
    *overrides: str,
    data: str,
    train_days: str,
    eval_day: int,
    out: str,
    model: str = "dlrm",
    arch: str = "",
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
    if config:
        args += ["--config", config]
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


def distdnas_search_job(
    search_dir: str,
    data: str,
    name: str,
    days: str,
    threads: int = 1,
    image: str = IMAGE,
    memMB: int = 8192,
) -> specs.AppDef:
    """One DistDNAS search job (what `recsearch search distdnas` submits per day).

    The search directory must have been prepared by `recsearch search distdnas`
    (search.json, cost table); the job writes SEARCH_DIR/NAME/weights.json.

    Args:
        search_dir: search directory.
        data: shard directory.
        name: job directory name inside search_dir, e.g. day_3.
        days: days of this job, e.g. 3 (or 0-3 for one-shot).
        threads: intra-op threads of the job.
        image: container image (for container schedulers).
        memMB: memory in MB.
    """
    from recsearch.data.criteo import parse_days
    from recsearch.search.distdnas.launch import job_app

    return job_app(search_dir, data, name, parse_days(days), threads, image, cpu=threads, memMB=memMB)


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
