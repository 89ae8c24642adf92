"""A per-op latency model of interaction graphs, fitted on this machine's measurements.

Each block of an architecture, and each piece of its head, is one module of the FX graph
that ``models.builder.build_interaction`` builds. Profiling times every module's forward at
one batch size on the inputs it gets inside the graph (best of ``repeats``) and counts its
FLOPs; the fit is then, per op kind, ``ms = a + b * MFLOPs per example`` (least squares, with
a and b clipped at 0). What the modules' times miss, the glue between them (concatenations,
reshapes, zero inputs) and the graph's own overhead, is fitted on the whole graphs' measured
times: measured ~ ``scale * summed module fits + glue_ms + kinds["glue"][0] * glue nodes``
by non-negative least squares (glue nodes are the graph's function and method calls; the
scale absorbs what timing modules one by one adds or saves against a whole forward).

Predicting an architecture's latency sums its modules' fits; it runs nothing, so a search
can price every architecture it samples. A kind never profiled falls back to one fit over
all kinds. Latency here is the interaction graph's alone: embedding lookups, which move
bytes rather than compute, are priced by ``counts.lookup_bytes_per_example``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

# the head's modules (models/builder.py): its MLP, its output layer, its linear part, and the
# layers that merge a dense input into the sparse fields
HEAD_KINDS = {"head_mlp": "mlp", "head_out": "linear", "head_linear": "linear"}
GLUE = "glue"  # a function or method call between modules: cat, flatten, new_zeros, ...


@dataclass
class ModuleTiming:
    """One module of a profiled graph: its op kind, MFLOPs per example and best time (ms)."""

    kind: str
    mflops: float
    ms: float


def _kinds(spec: dict[str, Any]) -> dict[str, str]:
    by_block = {b["name"]: b["op"] for b in spec["blocks"]}
    return {**by_block, **HEAD_KINDS}


def _kind_of(target: str, kinds: dict[str, str]) -> str:
    return kinds.get(target, "linear" if "_to_sparse_" in target else target)


class _ModuleTimer(fx.Interpreter):
    """Runs the graph node by node, timing each module call (ms, by its target)."""

    def __init__(self, graph: fx.GraphModule) -> None:
        super().__init__(graph)
        self.seen: dict[str, float] = {}

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        start = time.perf_counter()
        out = super().call_module(target, args, kwargs)
        self.seen[str(target)] = (time.perf_counter() - start) * 1e3
        return out


def _graph_and_inputs(
    spec: dict[str, Any],
    shape: tuple[int, int, int],
    batch: int,
    names: tuple[list[str] | None, list[str] | None],
) -> tuple[fx.GraphModule, torch.Tensor, torch.Tensor]:
    from recsearch.models.builder import build_interaction

    num_dense, num_fields, emb_dim = shape
    graph = build_interaction(spec, num_dense, num_fields, emb_dim, names[0], names[1]).eval()
    return graph, torch.randn(batch, num_dense), torch.randn(batch, num_fields, emb_dim)


def module_mflops(
    spec: dict[str, Any],
    shape: tuple[int, int, int],
    names: tuple[list[str] | None, list[str] | None] = (None, None),
) -> dict[str, tuple[str, float]]:
    """Each module of the graph: (op kind, MFLOPs per example)."""
    graph, dense, sparse = _graph_and_inputs(spec, shape, 2, names)
    return _graph_mflops(graph, spec, dense, sparse)


def _graph_mflops(
    graph: fx.GraphModule, spec: dict[str, Any], dense: torch.Tensor, sparse: torch.Tensor
) -> dict[str, tuple[str, float]]:
    """``module_mflops`` of a built graph, counted on the first two examples of its inputs.
    Counted with autograd on: the counter's module tracker fails on parameters expanded under
    no_grad."""
    # per module, by its path in the graph
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        graph(dense[:2], sparse[:2])
    counts = counter.get_flop_counts()
    kinds = _kinds(spec)
    targets = [str(n.target) for n in graph.graph.nodes if n.op == "call_module"]
    modules = {
        t: (_kind_of(t, kinds), sum(counts.get(f"{type(graph).__name__}.{t}", {}).values()) / 2 / 1e6)
        for t in targets
    }
    glue = {n.name: (GLUE, 0.0) for n in graph.graph.nodes if n.op in ("call_function", "call_method")}
    return {**modules, **glue}


@torch.no_grad()
def profile_graph(
    spec: dict[str, Any],
    shape: tuple[int, int, int],
    batch: int = 512,
    repeats: int = 5,
    names: tuple[list[str] | None, list[str] | None] = (None, None),
) -> tuple[list[ModuleTiming], float]:
    """Time each module of an architecture's interaction graph and the whole graph (best of
    ``repeats`` each, after one warm-up) at ``batch``; ``shape`` = (dense features, sparse
    fields, embedding width)."""
    graph, dense, sparse = _graph_and_inputs(spec, shape, batch, names)
    flops = _graph_mflops(graph, spec, dense, sparse)
    graph(dense, sparse)
    best: dict[str, float] = {}
    for _ in range(repeats):
        timer = _ModuleTimer(graph)
        timer.run(dense, sparse)
        for t, ms in timer.seen.items():
            best[t] = min(ms, best.get(t, ms))
    timed = [ModuleTiming(flops[t][0], flops[t][1], best[t]) for t in best]
    glue = [ModuleTiming(GLUE, 0.0, 0.0) for kind, _ in flops.values() if kind == GLUE]
    return timed + glue, _best_forward_ms(graph, dense, sparse, repeats)


@torch.no_grad()
def _best_forward_ms(graph: fx.GraphModule, dense: torch.Tensor, sparse: torch.Tensor, repeats: int) -> float:
    """Best of ``repeats`` whole forwards (ms), after one warm-up: the best run is the least
    disturbed by other work on the machine."""
    graph(dense, sparse)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        graph(dense, sparse)
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def _fit_line(points: list[ModuleTiming]) -> list[float]:
    """``[a, b]`` of ms = a + b * MFLOPs, both >= 0 (one point, or equal FLOPs: a constant)."""
    x = np.array([p.mflops for p in points])
    y = np.array([p.ms for p in points])
    if len(points) < 2 or np.ptp(x) == 0:
        return [float(y.mean()), 0.0]
    b, a = np.polyfit(x, y, 1)
    if b < 0:
        return [float(y.mean()), 0.0]
    if a < 0:  # through the origin
        return [0.0, float((x @ y) / (x @ x))]
    return [float(a), float(b)]


@dataclass
class LatencyModel:
    """Per op kind, ``[a ms, b ms per MFLOP/example]``; see the module docstring."""

    batch: int
    threads: int
    kinds: dict[str, list[float]]
    overall: list[float]
    glue_ms: float
    graphs: int
    scale: float = 1.0
    fit: dict[str, float] = field(default_factory=dict)  # how well it predicts the graphs it saw
    graph_ms: list[list[float]] = field(default_factory=list)  # [predicted, measured] of each one

    def predict_modules(self, modules: Iterable[tuple[str, float]]) -> float:
        ops, glue = 0.0, 0.0
        for kind, mflops in modules:
            if kind == GLUE:
                glue += self.kinds.get(GLUE, [0.0])[0]
                continue
            a, b = self.kinds.get(kind, self.overall)
            ops += a + b * mflops
        return self.scale * ops + self.glue_ms + glue

    def predict_ms(
        self,
        spec: dict[str, Any],
        shape: tuple[int, int, int],
        names: tuple[list[str] | None, list[str] | None] = (None, None),
    ) -> float:
        """Predicted forward ms of the interaction graph at ``self.batch``."""
        return self.predict_modules(module_mflops(spec, shape, names).values())

    def to_dict(self) -> dict[str, Any]:
        return {"unit": f"ms at batch {self.batch}", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyModel:
        return cls(**{k: v for k, v in d.items() if k != "unit"})

    @classmethod
    def load(cls, path: str) -> LatencyModel:
        from recsearch.utils.fileio import read_json

        d = read_json(path)
        if not isinstance(d, dict) or "kinds" not in d:
            raise ValueError(f"{path}: not a latency model; write one with `recsearch profile --fit-latency`")
        return cls.from_dict(d)


def fit_latency_model(
    specs: list[dict[str, Any]],
    shape: tuple[int, int, int] | list[tuple[int, int, int]],
    batch: int = 512,
    repeats: int = 5,
    names: tuple[list[str] | None, list[str] | None] = (None, None),
    progress: bool = True,
) -> LatencyModel:
    """Profile each architecture on this machine and fit the per-kind lines and the glue;
    ``shape``: one for every architecture, or one each."""
    if not specs:
        raise ValueError("the latency model needs at least one architecture to profile")
    shapes = shape if isinstance(shape, list) else [shape] * len(specs)
    profiled = [
        profile_graph(s, sh, batch, repeats, names)
        for s, sh in tqdm(
            list(zip(specs, shapes, strict=True)), desc="latency model", unit="arch", disable=not progress
        )
    ]
    points = [m for modules, _ in profiled for m in modules if m.kind != GLUE]
    by_kind: dict[str, list[ModuleTiming]] = {}
    for m in points:
        by_kind.setdefault(m.kind, []).append(m)
    model = LatencyModel(
        batch=batch,
        threads=torch.get_num_threads(),
        kinds={k: _fit_line(v) for k, v in sorted(by_kind.items())},
        overall=_fit_line(points),
        glue_ms=0.0,
        graphs=len(specs),
    )
    model.kinds[GLUE] = [0.0, 0.0]
    model.scale, model.glue_ms, model.kinds[GLUE][0] = _fit_glue(model, profiled)
    measured = np.array([whole for _, whole in profiled])
    predicted = np.array([model.predict_modules((m.kind, m.mflops) for m in mods) for mods, _ in profiled])
    model.fit = {"mean_abs_rel_error": float(np.mean(np.abs(predicted - measured) / measured))}
    model.graph_ms = [[float(p), float(m)] for p, m in zip(predicted, measured, strict=True)]
    return model


def _fit_glue(
    model: LatencyModel, profiled: list[tuple[list[ModuleTiming], float]]
) -> tuple[float, float, float]:
    """(scale, ms per graph, ms per glue node) >= 0 that best explain the measured graphs from
    their summed module fits (as ``model`` has them with scale 1 and no glue)."""
    from scipy.optimize import nnls

    ops = [model.predict_modules((m.kind, m.mflops) for m in mods if m.kind != GLUE) for mods, _ in profiled]
    glue = [float(sum(m.kind == GLUE for m in mods)) for mods, _ in profiled]
    measured = np.array([whole for _, whole in profiled])
    x = np.array([[o, 1.0, g] for o, g in zip(ops, glue, strict=True)])
    # in relative error: graphs range from tens of microseconds to hundreds of milliseconds
    (scale, base, per_node), _ = nnls(x / measured[:, None], np.ones(len(measured)))
    return float(scale), float(base), float(per_node)


def measured_graph_ms(
    spec: dict[str, Any],
    shape: tuple[int, int, int],
    batch: int = 512,
    repeats: int = 10,
    names: tuple[list[str] | None, list[str] | None] = (None, None),
) -> float:
    """Measured forward ms of the interaction graph: best of ``repeats`` after one warm-up, as
    the profiled modules and graphs are timed."""
    return _best_forward_ms(*_graph_and_inputs(spec, shape, batch, names), repeats)


ZOO_WIDTHS = (8, 16, 32)


def zoo_specs(num_dense: int, num_fields: int) -> tuple[list[dict[str, Any]], list[tuple[int, int, int]]]:
    """The zoo's architectures at embedding widths ``ZOO_WIDTHS`` and their graph shapes: every
    op kind the zoo uses, at several sizes."""
    from recsearch.models.zoo import create_arch, list_models

    specs = [create_arch(m, emb_dim=d) for m in list_models() for d in ZOO_WIDTHS]
    return specs, [(num_dense, num_fields, int(s["embedding"]["dim"])) for s in specs]


def zoo_latency_model(num_dense: int, num_fields: int, progress: bool = True) -> LatencyModel:
    """A latency model fitted on ``zoo_specs`` (``recsearch profile --fit-latency``)."""
    return fit_latency_model(*zoo_specs(num_dense, num_fields), progress=progress)
