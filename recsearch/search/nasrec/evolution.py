"""Regularized evolution over subnets scored with inherited supernet weights (NASRec Sec. 4.4).

Real et al., "Regularized Evolution for Image Classifier Architecture Search" (2019), with
NASRec's adaptive mutation: a child differs from its parent by ``mutations_start``
mutations in the first rounds, one fewer every ``mutations_decay_every`` rounds, down to
one. The population ages: each round's children replace its oldest members. A budget
rejects (or penalizes) subnets over ``max_flops``, or over ``max_latency_ms`` of predicted
latency with ``cost_metric=latency``.

The state (population, every scored subnet, the random generator) is written after the
initial population and after every round, so a killed search resumes where it stopped
and ends as an uninterrupted one would.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from recsearch.search.nasrec.config import NASRecConfig
from recsearch.search.nasrec.space import Genotype, canonical, decode, encode, mutate, sample
from recsearch.utils.faults import fault_point
from recsearch.utils.fileio import read_json, write_json

MAX_TRIES = 50  # redraws of a child that was seen already, or is over the FLOPs budget


@dataclass
class Scored:
    key: str  # the canonical genotype's encoding: the model
    genotype: str  # the genotype's encoding, unused genes included (what evolution mutates)
    fitness: float  # val logloss (+ FLOPs penalty); lower is better
    logloss: float
    flops: float
    round: int


@dataclass
class EvolutionState:
    round: int = 0  # rounds done
    population: list[str] = field(default_factory=list)  # keys, oldest first
    scored: dict[str, Scored] = field(default_factory=dict)
    best_per_round: list[float] = field(default_factory=list)
    rng: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str) -> None:
        write_json(
            path,
            {
                "round": self.round,
                "population": self.population,
                "scored": {k: vars(v) for k, v in self.scored.items()},
                "best_per_round": self.best_per_round,
                "rng": self.rng,
            },
        )

    @staticmethod
    def load(path: str) -> EvolutionState:
        d = read_json(path)
        return EvolutionState(
            round=d["round"],
            population=list(d["population"]),
            scored={k: Scored(**v) for k, v in d["scored"].items()},
            best_per_round=list(d["best_per_round"]),
            rng=d["rng"],
        )


def mutation_count(config: NASRecConfig, round_: int) -> int:
    """Mutations per child in round ``round_`` (0-based): from ``mutations_start`` down to 1.

    Example:
        >>> from recsearch.search.nasrec.config import NASRecConfig
        >>> [mutation_count(NASRecConfig(), r) for r in (0, 19, 20, 80, 99)]
        [5, 5, 4, 1, 1]
    """
    return max(1, config.mutations_start - round_ // config.mutations_decay_every)


class Evolution:
    """Regularized evolution with a scorer of subnets (lower is better).

    Args:
        config: the search settings.
        score: a subnet -> its validation logloss with inherited weights.
        flops: a subnet -> FLOPs per example of its interaction graph.
        state_path: where the state is written after every round.
        cost: a subnet -> what the budget limits (``cost_metric``); default its FLOPs.
    """

    def __init__(
        self,
        config: NASRecConfig,
        score: Callable[[Genotype], float],
        flops: Callable[[Genotype], float],
        state_path: str,
        cost: Callable[[Genotype], float] | None = None,
    ) -> None:
        self.config, self.score, self.flops, self.path = config, score, flops, state_path
        self.cost = cost or flops
        self.budget = config.max_flops if config.cost_metric == "flops" else config.max_latency_ms
        self.space = config.space

    def _fitness(self, logloss: float, cost: float) -> float:
        c = self.config
        if self.budget and c.flops_policy == "penalize" and cost > self.budget:
            return logloss + c.flops_penalty * (cost / self.budget - 1.0)
        return logloss

    @property
    def _budget_key(self) -> str:
        return "max_flops" if self.config.cost_metric == "flops" else "max_latency_ms"

    def _key(self, genotype: Genotype) -> str:
        return encode(canonical(genotype, self.space))

    def _admissible(self, genotype: Genotype, state: EvolutionState) -> bool:
        c = self.config
        if self._key(genotype) in state.scored:
            return False
        return not (self.budget and c.flops_policy == "reject" and self.cost(genotype) > self.budget)

    def _evaluate(self, genotype: Genotype, state: EvolutionState) -> Scored:
        logloss = self.score(genotype)
        fitness = self._fitness(logloss, self.cost(genotype))
        s = Scored(self._key(genotype), encode(genotype), fitness, logloss, self.flops(genotype), state.round)
        state.scored[s.key] = s
        return s

    def _draw(self, make: Callable[[], Genotype], state: EvolutionState) -> Genotype:
        for _ in range(MAX_TRIES):
            g = make()
            if self._admissible(g, state):
                return g
        raise ValueError(
            f"no new subnet within the budget {self._budget_key}={self.budget:g} after "
            f"{MAX_TRIES} tries; raise {self._budget_key} or use flops_policy=penalize"
        )

    def run(self, state: EvolutionState | None = None, progress: bool = True) -> EvolutionState:
        c = self.config
        state = state or EvolutionState()
        rng = np.random.default_rng(c.seed)
        if state.rng:
            rng.bit_generator.state = state.rng
        bar = tqdm(
            total=c.population + c.rounds * c.children,
            initial=len(state.population) + state.round * c.children,
            desc="evolution",
            unit="subnet",
            disable=not progress,
        )
        try:
            while len(state.population) < c.population:  # the initial population
                g = self._draw(lambda: sample(rng, self.space), state)
                state.population.append(self._evaluate(g, state).key)
                bar.update(1)
                if len(state.population) == c.population:
                    state.best_per_round.append(min(state.scored[k].fitness for k in state.population))
                state.rng = dict(rng.bit_generator.state)
                state.save(self.path)  # each initial subnet is kept: at paper scale each takes minutes
            while state.round < c.rounds:
                picks = rng.choice(len(state.population), size=c.sample_size, replace=False)
                parent = min(
                    (state.population[int(i)] for i in picks), key=lambda k: (state.scored[k].fitness, k)
                )
                count = mutation_count(c, state.round)
                child = functools.partial(
                    mutate, rng, decode(state.scored[parent].genotype), self.space, count
                )
                for _ in range(c.children):
                    g = self._draw(child, state)
                    state.population.append(self._evaluate(g, state).key)
                    bar.update(1)
                state.population = state.population[c.children :]  # the oldest leave
                state.round += 1
                state.best_per_round.append(min(s.fitness for s in state.scored.values()))
                state.rng = dict(rng.bit_generator.state)
                state.save(self.path)
                fault_point("evolution-round-saved")
                bar.set_postfix(best=f"{state.best_per_round[-1]:.5f}")
        finally:
            bar.close()
        return state

    def top(self, state: EvolutionState, k: int) -> list[Scored]:
        """The ``k`` best subnets ever scored (unique)."""
        return sorted(state.scored.values(), key=lambda s: (s.fitness, s.key))[:k]
