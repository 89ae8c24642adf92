"""torchx components: a local 2-process run, and dry runs for Slurm and Kubernetes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import REPO, torchx

COMPONENTS = str(REPO / "launchers" / "recsearch_jobs.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_local_two_process_train_then_eval(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = torchx(
        "run",
        "-s",
        "local_cwd",
        f"{COMPONENTS}:train",
        "--data",
        str(shards),
        "--train_days",
        "0-1",
        "--eval_day",
        "2",
        "--out",
        str(out),
        "--model",
        "dlrm",
        "-j",
        "1x2",
        "--rdzv_port",
        str(free_port()),
        "batch_size=64",
        "warmup_steps=5",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["auc"] > 0.6  # it learned
    r = torchx(
        "run",
        "-s",
        "local_cwd",
        f"{COMPONENTS}:evaluate",
        "--run",
        str(out),
        "--data",
        str(shards),
        "--day",
        "2",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "eval_day_2.json").read_text())["auc"] == pytest.approx(m["auc"], abs=1e-6)


def test_slurm_and_kubernetes_dry_runs() -> None:
    common = [
        f"{COMPONENTS}:train",
        "--data",
        "/shared/shards",
        "--train_days",
        "0-22",
        "--eval_day",
        "23",
        "--out",
        "/shared/runs/dlrm",
        "-j",
        "2x8",
        "--gpu",
        "8",
        "batch_size=8192",
    ]
    slurm = torchx("run", "--dryrun", "-s", "slurm", *common, timeout=120)
    assert slurm.returncode == 0, slurm.stderr[-2000:]
    assert "--nnodes 2 --nproc_per_node 8" in slurm.stdout
    assert "-m recsearch train --data /shared/shards --train-days 0-22 --eval-day 23" in slurm.stdout
    k8s = torchx(
        "run",
        "--dryrun",
        "-s",
        "kubernetes",
        "-cfg",
        "queue=default",
        "--workspace",
        "",
        *common,
        timeout=120,
    )
    assert k8s.returncode == 0, k8s.stderr[-2000:]
    assert "queue: default" in k8s.stdout and "nvidia.com/gpu: '8'" in k8s.stdout
    assert "batch_size=8192" in k8s.stdout


def test_other_components_dry_run() -> None:
    for comp, args in [
        ("profile", ["--data", "/d", "--model", "dcn_v2"]),
        ("export", ["--run", "/r", "--out", "/m.pt"]),
        ("evaluate", ["--run", "/r", "--data", "/d", "--day", "3"]),
    ]:
        r = torchx("run", "--dryrun", "-s", "slurm", f"{COMPONENTS}:{comp}", *args, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"-m recsearch {'eval' if comp == 'evaluate' else comp}" in r.stdout


def test_search_components_dry_run() -> None:
    search = [
        f"{COMPONENTS}:search",
        "--method",
        "distdnas",
        "--data",
        "/shared/shards",
        "--train_days",
        "0-21",
        "--val_day",
        "22",
        "--out",
        "/shared/search",
        "--preset",
        "paper",
        "--scheduler",
        "slurm",
        "--",
        "stack=2",
    ]
    r = torchx("run", "--dryrun", "-s", "slurm", *search, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "-m recsearch search distdnas --data /shared/shards --train-days 0-21 --val-day 22" in r.stdout
    assert "--scheduler slurm" in r.stdout and "--preset paper" in r.stdout and "stack=2" in r.stdout
    job = [f"{COMPONENTS}:search_job", "--search_dir", "/shared/search", "--job", "day_3", "--threads", "4"]
    r = torchx("run", "--dryrun", "-s", "slurm", *job, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "-m recsearch.search.job --search-dir /shared/search --job day_3" in r.stdout
    assert "OMP_NUM_THREADS=4" in r.stdout


def test_kubernetes_dry_runs_are_pods_valid_under_the_kubernetes_schema() -> None:
    """Every component's Kubernetes dry run (a Volcano Job) holds pod templates that the
    Kubernetes OpenAPI schema accepts (kubernetes-validate, strict: no unknown fields)."""
    import importlib.util

    import kubernetes_validate
    from kubernetes.client import ApiClient
    from torchx.runner import get_runner

    spec = importlib.util.spec_from_file_location("recsearch_jobs", COMPONENTS)
    assert spec and spec.loader
    jobs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jobs)
    apps = {
        "preprocess": jobs.preprocess(input="/shared/raw", out="/shared/shards", days="0-23"),
        "train": jobs.train(
            "batch_size=8192",
            data="/shared/shards",
            train_days="0-22",
            eval_day=23,
            out="/shared/runs/dlrm",
            j="2x8",
            gpu=8,
        ),  # fmt: skip
        "search": jobs.search(
            method="distdnas",
            data="/shared/shards",
            train_days="0-21",
            val_day=22,
            out="/shared/search",
            scheduler="kubernetes",
            scheduler_args="queue=default",
        ),  # fmt: skip
        "search_job": jobs.search_job(search_dir="/shared/search", job="day_3", threads=4),
        "evaluate": jobs.evaluate(run="/shared/runs/dlrm", data="/shared/shards", day=23),
        "profile": jobs.profile(data="/shared/shards", model="dcn_v2"),
        "export": jobs.export(run="/shared/runs/dlrm", out="/shared/m.pt"),
    }
    version, replicas = kubernetes_validate.latest_version(), {}
    for name, app in apps.items():
        info = get_runner().dryrun(app, "kubernetes", cfg={"queue": "default"}, workspace=None)
        job = ApiClient().sanitize_for_serialization(info.request.resource)
        replicas[name] = sum(t["replicas"] for t in job["spec"]["tasks"])
        assert (job["apiVersion"], job["kind"]) == ("batch.volcano.sh/v1alpha1", "Job")
        assert job["spec"]["queue"] == "default"
        assert job["spec"]["tasks"], name
        for task in job["spec"]["tasks"]:
            pod = {"apiVersion": "v1", "kind": "Pod", **task["template"]}
            kubernetes_validate.validate(pod, version, strict=True)  # raises on an invalid spec
            assert pod["spec"]["containers"][0]["image"] == jobs.IMAGE, name
    assert replicas["train"] == 2 and replicas["export"] == 1  # 2 nodes x 8 processes: a pod per node
