"""How a cost-aware search prices an architecture: counted FLOPs, or latency on this machine.

Every cost-aware method takes ``cost_metric`` (flops | latency) and ``latency_model`` (a file
written by ``recsearch profile --fit-latency``; empty: fit one now on architectures of the
search's own space). The latency model (``profile/latency_model.py``) is fitted on measured
per-op latency and predicts without running anything, so a search can price every
architecture it samples. It is saved in the search folder and reused when the search resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from iopath.common.file_io import g_pathmgr

if TYPE_CHECKING:  # the configs import this module; `recsearch --help` must not load torch
    from recsearch.profile.latency_model import LatencyModel

COST_METRICS = ("flops", "latency")
LATENCY_MODEL = "latency_model.json"
# architectures of the search's own space profiled when no latency model is given: enough to
# see every op kind at several widths, few enough to take seconds
PROFILED_ARCHS = 24


def latency_model_problem(path: str) -> str | None:
    """What is wrong with a ``latency_model`` setting, for the configs' one-line errors."""
    if path and not g_pathmgr.exists(path):
        return f"latency_model={path}: no such file; write one with `recsearch profile --fit-latency FILE`"
    return None


def latency_model_for(
    given: str,
    sample_specs: Callable[[int], list[dict[str, Any]]],
    shape: tuple[int, int, int],
    save_to: str,
    progress: bool = True,
) -> LatencyModel:
    """The given latency model, else the one saved at ``save_to`` by an earlier attempt, else
    one fitted now on ``sample_specs(PROFILED_ARCHS)``; written to ``save_to`` either way."""
    from recsearch.profile.latency_model import LatencyModel, fit_latency_model
    from recsearch.utils.fileio import write_json

    if given:
        problem = latency_model_problem(given)
        if problem:
            raise ValueError(problem)
        model = LatencyModel.load(given)
    elif g_pathmgr.exists(save_to):
        return LatencyModel.load(save_to)
    else:
        model = fit_latency_model(sample_specs(PROFILED_ARCHS), shape, progress=progress)
    write_json(save_to, model.to_dict())
    return model


def arch_cost(
    metric: str, shape: tuple[int, int, int], latency: LatencyModel | None = None
) -> Callable[[dict[str, Any]], float]:
    """spec -> its cost: FLOPs per example of the interaction graph, or its predicted ms."""
    from recsearch.profile.counts import interaction_flops

    if metric not in COST_METRICS:
        raise ValueError(f"cost_metric must be one of {', '.join(COST_METRICS)}, got {metric!r}")
    if metric == "flops":
        return lambda spec: interaction_flops(spec, *shape)
    if latency is None:
        raise ValueError("cost_metric=latency needs a latency model")
    return lambda spec: latency.predict_ms(spec, shape)


def cost_unit(metric: str, latency: LatencyModel | None = None) -> str:
    return (
        f"ms at batch {latency.batch} (predicted)" if metric == "latency" and latency else "FLOPs per example"
    )
