"""The per-op latency model: profiled per module, fitted per op kind, predicts without running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsearch.cli import main
from recsearch.models.zoo import create_arch
from recsearch.profile.latency_model import LatencyModel, fit_latency_model, module_mflops, profile_graph

SHAPE = (3, 5, 16)


def test_every_module_is_timed_with_its_kind_and_flops() -> None:
    spec = create_arch("dcn_v2", cross_layers=2, hidden=(32, 16))
    modules, whole = profile_graph(spec, SHAPE, batch=64, repeats=2)
    kinds = {m.kind for m in modules}
    assert {"crossnet", "linear", "mlp", "glue"} <= kinds  # glue: the cat of the two branches
    assert all(m.ms > 0 and m.mflops >= 0 for m in modules if m.kind != "glue") and whole > 0
    # the modules' FLOPs add up to the graph's (what the shared counter reports for it)
    from recsearch.profile.counts import interaction_flops

    total = sum(f for _, f in module_mflops(spec, SHAPE).values())
    assert total * 1e6 == pytest.approx(interaction_flops(spec, *SHAPE), rel=1e-6)


def test_fitted_model_predicts_more_time_for_more_flops_and_round_trips(tmp_path: Path) -> None:
    specs = [create_arch("dlrm", emb_dim=d) for d in (8, 16)] + [create_arch("dcn_v2", emb_dim=8)]
    shapes = [(3, 5, d) for d in (8, 16, 8)]
    model = fit_latency_model(specs, shapes, batch=128, repeats=2, progress=False)
    assert {"dot_product", "linear", "crossnet"} <= set(model.kinds) and model.graphs == 3
    assert model.glue_ms >= 0 and model.scale >= 0 and all(a >= 0 and b >= 0 for a, b in model.kinds.values())
    small = create_arch("dlrm", emb_dim=8, bottom=(16, 8), top=(16,))
    big = create_arch("dlrm", emb_dim=8, bottom=(256, 8), top=(512, 256))
    assert model.predict_ms(big, (3, 5, 8)) >= model.predict_ms(small, (3, 5, 8)) > 0
    # an op kind it never profiled is priced by the fit over every kind
    fm = create_arch("fm", emb_dim=8)
    assert "fm" not in model.kinds and model.predict_ms(fm, (3, 5, 8)) > 0
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_dict()))
    again = LatencyModel.load(str(path))
    assert again.predict_ms(big, (3, 5, 8)) == model.predict_ms(big, (3, 5, 8))
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a latency model"):
        LatencyModel.load(str(path))


def test_profile_fit_latency_writes_the_model_and_prints_predicted_vs_measured(
    shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latency.json"
    assert main(["profile", "--model", "dcn_v2", "--data", str(shards), "--fit-latency", str(out)]) == 0
    text = capsys.readouterr().out
    assert "crossnet" in text and "predicted" in text and "measured" in text
    model = LatencyModel.load(str(out))
    assert model.batch == 512 and model.graphs == 1 and "crossnet" in model.kinds


def test_compare_times_a_run_again_only_when_its_arch_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """latency.json caches each run's times; a run retrained with another architecture (e.g.
    after a preset change) is timed again, and another latency model only re-predicts."""
    from types import SimpleNamespace

    import recsearch.compare.latency as latency

    timed: list[str] = []
    monkeypatch.setattr(latency, "measured_graph_ms", lambda spec, *a, **k: timed.append(spec["name"]) or 1.0)
    info = SimpleNamespace(
        dense_names=["d0", "d1", "d2"], sparse_names=[f"c{i}" for i in range(5)], jagged_names=[]
    )
    runs = {}
    for name in ("dlrm", "dcn_v2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "arch.json").write_text(json.dumps(create_arch(name, emb_dim=8)))
        runs[f"{name}/0"] = str(tmp_path / name)
    model = LatencyModel(
        batch=64, threads=1, kinds={"mlp": [0.1, 1.0]}, overall=[0.2, 1.0], glue_ms=0.0, graphs=1
    )
    given = tmp_path / "model.json"
    given.write_text(json.dumps(model.to_dict()))
    first = latency.model_latencies(str(tmp_path), runs, info, str(given), progress=False)
    assert sorted(timed) == ["dcn_v2", "dlrm"]
    assert latency.model_latencies(str(tmp_path), runs, info, str(given), progress=False) == first
    assert len(timed) == 2  # nothing timed again
    (tmp_path / "dlrm" / "arch.json").write_text(json.dumps(create_arch("dlrm", emb_dim=16)))
    latency.model_latencies(str(tmp_path), runs, info, str(given), progress=False)
    assert timed[2:] == ["dlrm"]
    doubled = LatencyModel(**{**model.__dict__, "scale": 2.0})
    given.write_text(json.dumps(doubled.to_dict()))
    again = latency.model_latencies(str(tmp_path), runs, info, str(given), progress=False)
    assert len(timed) == 3  # re-predicted, not re-timed
    assert again["dcn_v2/0"]["predicted_ms"] > first["dcn_v2/0"]["predicted_ms"]
