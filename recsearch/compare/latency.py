"""Predicted vs measured latency of every compared model, on the machine the report is made.

The prediction is the per-op latency model's (``profile/latency_model.py``): the one given
as ``latency_model``, else one fitted on the zoo's graphs here, so found models are priced by
a model that never saw them. The measurement times the same interaction graph (best of 10 at
the model's batch). Both are kept in ``latency.json``, so a rerun reports without re-timing
unless a run's ``arch.json`` changed (timed again) or the latency model did (predicted again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from iopath.common.file_io import g_pathmgr

from recsearch.profile.latency_model import LatencyModel, measured_graph_ms, zoo_latency_model
from recsearch.utils.fileio import file_sha256, read_json, write_json

if TYPE_CHECKING:
    from recsearch.data.shards import ShardInfo

LATENCY = "latency.json"


def model_latencies(
    out: str, runs: dict[str, str], info: ShardInfo, given: str = "", progress: bool = True
) -> dict[str, dict[str, float]]:
    """``runs``: key -> training run folder; returns key -> {predicted_ms, measured_ms} of its
    model on the data ``info`` (a ``ShardInfo``) describes."""
    fields = info.sparse_names + info.jagged_names
    shape, names = (len(info.dense_names), len(fields)), (fields, info.dense_names)
    path = f"{out}/{LATENCY}"
    saved = read_json(path) if g_pathmgr.exists(path) else {"model": None, "runs": {}}
    if given:
        model = LatencyModel.load(given)
    elif saved["model"]:
        model = LatencyModel.from_dict(saved["model"])
    else:
        model = zoo_latency_model(*shape, progress=progress)
    new_model = saved["model"] != model.to_dict()  # e.g. another latency_model given on a rerun
    result: dict[str, dict[str, float]] = {}
    for key, run in runs.items():
        entry = saved["runs"].get(key, {})
        digest = file_sha256(f"{run}/arch.json")  # a run retrained with another arch is timed again
        if entry.get("arch") != digest or new_model:
            spec = read_json(f"{run}/arch.json")
            full = (*shape, int(spec["embedding"]["dim"]))
            if entry.get("arch") != digest:
                measured = measured_graph_ms(spec, full, model.batch, names=names)
                entry = {"arch": digest, "measured_ms": measured}
            entry["predicted_ms"] = model.predict_ms(spec, full, names)
            saved["runs"][key] = entry
        result[key] = {k: entry[k] for k in ("predicted_ms", "measured_ms")}
    write_json(path, {"model": model.to_dict(), "runs": saved["runs"]})
    return result


def latency_lines(per_seed: dict[str, dict[int, dict[str, Any]]], kinds: dict[str, str]) -> list[str]:
    """How well the latency model predicted the found models (and, apart, the baselines)."""
    lines = []
    for kind in ("search", "baseline"):
        pairs = [
            (r["latency_predicted_ms"], r["latency_measured_ms"])
            for name, rows in per_seed.items()
            if kinds[name] == kind
            for r in rows.values()
            if "latency_measured_ms" in r
        ]
        if pairs:
            err = sum(abs(p - m) / m for p, m in pairs) / len(pairs)
            what = "found models" if kind == "search" else "baselines (the zoo the model was fitted on)"
            lines.append(f"- {what}: mean |predicted - measured| / measured {err:.1%} over {len(pairs)} runs")
    return lines
