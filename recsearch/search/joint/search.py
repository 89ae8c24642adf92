"""The joint search: two searches under the contract, the second on the first one's find."""

from __future__ import annotations

from typing import Any

from recsearch.search.contract import SearchData, SearchOutput, SearchResult, run_search
from recsearch.search.joint.config import JointConfig
from recsearch.search.registry import get_method
from recsearch.utils.fileio import read_json


def run(config: JointConfig, data: SearchData, out: SearchOutput) -> SearchResult:
    """``interaction`` into ``DIR/interaction``, then ``sizes`` into ``DIR/sizes`` with the
    found arch.json as its base model at that graph's width; the result is the second's arch."""
    first, second = get_method(config.interaction), get_method(config.sizes)
    assert second.base_keys is not None  # checked by the config
    with out.phase("interaction"):
        r1 = _stage(config, "interaction", [], data, out)
    if r1.get("dryrun"):
        if out.launch.progress:
            print(f"# then {second.name} searches the embedding sizes of the graph {first.name} finds")
        return SearchResult(dryrun=True)
    graph = out.path("interaction/arch.json")
    width = read_json(graph)["embedding"]["dim"]
    model_key, width_key = second.base_keys
    with out.phase("sizes"):
        r2 = _stage(config, "sizes", [f"{model_key}={graph}", f"{width_key}={width}"], data, out)
    arch = read_json(out.path("sizes/arch.json"))
    arch["name"] = f"joint_{first.name}_{second.name}"
    findings: dict[str, Any] = {
        "interaction": _summary(r1, "interaction"),
        "sizes": {**_summary(r2, "sizes"), "base_model": graph, "width": width},
    }
    return SearchResult(arch=arch, findings=findings, report=_report(findings, r1, r2))


def _stage(config: JointConfig, stage: str, extra: list[str], data: SearchData, out: SearchOutput) -> Any:
    method = getattr(config, stage)
    return run_search(
        method,
        data.root,
        data.train_days,
        data.val_day,
        out.path(stage),
        config.stage_config(stage, extra),
        preset=getattr(config, f"{stage}_preset"),
        launch=out.launch,
    )


def _summary(record: dict[str, Any], folder: str) -> dict[str, Any]:
    return {
        "method": record["method"],
        "dir": folder,
        "result": record["result"],
        "wall_seconds": record.get("wall_seconds"),
    }


def _report(findings: dict[str, Any], r1: dict[str, Any], r2: dict[str, Any]) -> str:
    rows = []
    for stage, r in (("interaction", r1), ("sizes", r2)):
        res = r["result"]
        rows.append(
            f"| {stage} | {r['method']} | [{stage}/report.md]({stage}/report.md) | "
            f"{res['flops'] / 1e6:.3f} | {res['dense_params']:,} | {res['embedding_params']:,} | "
            f"{r.get('wall_seconds', 0):.0f} |"
        )
    return "\n".join(
        [
            "## Stages",
            "",
            "The first stage's graph at uniform embedding sizes, then the same graph over the sizes the "
            f"second stage found (width {findings['sizes']['width']}).",
            "",
            "| stage | method | report | MFLOPs/example | dense params | embedding params | seconds |",
            "|---|---|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
