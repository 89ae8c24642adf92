"""``recsearch compare``: every method and the baselines on the same data, one report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recsearch.compare.report import arch_items, similarity
from recsearch.models.zoo import create_arch
from tests.conftest import run_recsearch

# a cheap comparison: one method, two baselines, two seeds, 4 planted days of 2,000 rows
SMALL = ["--seeds", "2", "--preset", "tiny", "methods=adass", "baselines=lr,dcn_v2", "reference=lr",
         "days=0-3", "rows_per_day=2000", "random_archs=0"]  # fmt: skip


@pytest.mark.integration
def test_compare_reports_every_model_over_seeds_and_a_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    r = run_recsearch("compare", "--out", str(out), *SMALL, timeout=900)
    record = json.loads((out / "compare.json").read_text())
    assert record["kinds"] == {"adass": "search", "lr": "baseline", "dcn_v2": "baseline"}
    assert not record["failed"]
    for model in ("adass", "lr", "dcn_v2"):
        assert set(record["per_seed"][model]) == {"0", "1"}, model
        for seed in (0, 1):  # the report's numbers are the runs' own
            m = json.loads((out / "runs" / model / f"seed_{seed}" / "metrics.json").read_text())
            row = record["per_seed"][model][str(seed)]
            assert row["logloss"] == m["logloss"] and row["flops"] == m["flops"]
            assert m["train_days"] == [0, 1] and m["eval_day"] == 3
            # latency of the interaction graph: predicted by the per-op model, and measured
            assert row["latency_predicted_ms"] > 0 and row["latency_measured_ms"] > 0
        s = record["summary"][model]
        assert s["seeds"] == 2 and s["logloss_std"] >= 0
    latency = json.loads((out / "latency.json").read_text())
    assert latency["model"]["graphs"] > 0 and len(latency["runs"]) == 6
    assert record["per_seed"]["lr"]["1"]["relative_ne"] == 1.0
    search = json.loads((out / "search" / "adass" / "seed_1" / "search.json").read_text())
    assert search["seed"] == 1 and search["val_day"] == 2 and search["train_days"] == [0, 1]
    assert record["per_seed"]["adass"]["1"]["search_seconds"] == search["wall_seconds"]
    # the thread count is part of the recipe: recorded by every job and stated in the report
    m = json.loads((out / "runs" / "lr" / "seed_0" / "metrics.json").read_text())
    threads = {search["threads"], m["threads"]}
    assert min(threads) >= 1 and record["threads"] == sorted(threads)
    # planted data: the Bayes limit is below every model's logloss
    assert all(record["bayes"]["logloss"] < s["logloss"] for s in record["summary"].values())
    assert record["stability"]["adass"]["seeds"] == 2
    assert set(record["targets"]["methods"]) == {"adass"}
    report = (out / "report.md").read_text()
    assert re.search(r"\| adass \| search \| 2 \| 0\.\d{4} ± 0\.\d{4} \|", report)
    assert "*Bayes limit*" in report and "## Targets" in report and "## Stability" in report
    assert f"Jobs ran with {m['threads']} intra-op thread(s) each" in report
    assert "## Latency" in report and "found models: mean |predicted - measured|" in report
    assert "| model | kind | seeds | AUC | logloss | NE | rel. NE | MFLOPs/ex" in r.stdout
    for png in ("pareto_flops.png", "pareto_embedding.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    again = run_recsearch("compare", "--out", str(out), *SMALL)
    assert "already done, skipped" in again.stderr
    assert json.loads((out / "compare.json").read_text())["per_seed"] == record["per_seed"]

    # a rerun may drop a baseline (its folder stays) but not change the data
    fewer = run_recsearch("compare", "--out", str(out), *SMALL, "baselines=lr", "target_baseline=lr")
    assert "dcn_v2" not in json.loads((out / "compare.json").read_text())["summary"]
    assert fewer.returncode == 0
    # random controls: architectures of the method's own space at its find's cost, same recipe
    run_recsearch("compare", "--out", str(out), *SMALL, "methods=adass,profit", "random_archs=2", timeout=900)
    controls = json.loads((out / "compare.json").read_text())["random_controls"]
    assert set(controls) == {"adass", "profit"}
    for method in ("adass", "profit"):
        assert len(controls[method]["random_logloss"]) == 4 and controls[method]["seeds"] == 2
        for seed in (0, 1):
            drawn = json.loads((out / "random" / method / f"seed_{seed}" / "random_1.json").read_text())
            flops = record_flops(out, f"{method}.random_1", seed)
            assert flops == pytest.approx(record_flops(out, method, seed), rel=0.05)
            assert drawn["name"] == f"{method}_random"
    assert "## Against random architectures" in (out / "report.md").read_text()
    other = run_recsearch("compare", "--out", str(out), *SMALL, "rows_per_day=3000", check=False)
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert "config.rows_per_day" in other.stderr and "--restart" in other.stderr


def record_flops(out: Path, model: str, seed: int) -> float:
    return float(json.loads((out / "runs" / model / f"seed_{seed}" / "metrics.json").read_text())["flops"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["methods=nope"], "unknown method 'nope'"),
        (["days=0-1"], "need 3 or more"),
        (["baselines=lr"], "reference=dlrm is not among baselines"),
        (["train_preset=huge"], "train_preset=huge"),
        (["search_preset=medium"], "search_preset=medium"),
        (["flops_budget=0"], "flops_budget must be > 0"),
        (["latency_model=/no/such.json"], "latency_model=/no/such.json: no such file"),
    ],
)
def test_bad_settings_fail_at_once_in_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    r = run_recsearch("compare", "--out", str(tmp_path / "c"), *args, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert says in r.stderr
    assert not (tmp_path / "c").exists()


def test_dryrun_shows_every_job_for_kubernetes_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "c"
    r = run_recsearch("compare", "--out", str(out), "--preset", "tiny", "--scheduler", "kubernetes",
                      "--scheduler-args", "queue=default", "--dryrun", "methods=dnis,profit",
                      "baselines=dlrm,dcn_v2")  # fmt: skip
    jobs = re.findall(r"^# (\S+) \(.*\) on kubernetes:", r.stdout, flags=re.M)
    assert jobs == ["search-dnis-s0", "search-profit-s0", "train-dlrm-s0", "train-dcn_v2-s0"]
    assert f"- {out}/search/dnis/seed_0" in r.stdout and "- --workers" in r.stdout
    assert not out.exists() or not any(out.iterdir())


def test_similarity_is_one_for_the_same_arch_and_lower_when_dims_differ() -> None:
    a = create_arch("dlrm", emb_dim=16)
    b = json.loads(json.dumps(a))
    b["name"] = "other"  # names and meta are not the architecture
    assert similarity([a, b]) == {"seeds": 2, "distinct": 1, "jaccard": 1.0}
    c = json.loads(json.dumps(a))
    c["embedding"]["dims"] = {"cat_0": 8}
    s = similarity([a, b, c])
    assert s["distinct"] == 2 and 0 < s["jaccard"] < 1
    assert "embedding.dims.cat_0=8" in arch_items(c)
