"""``recsearch synth``: planted click logs in raw Criteo format from a known teacher.

The teacher is a logistic model over exactly what is written to the raw file:
missingness is drawn first, and a missing field contributes nothing. Its logit is

    b + sum_f w_f(v_f) + sum_(f,g) <u_f(v_f), u_g(v_g)>
      + sum_(f,g,h) sum_k u_f(v_f)_k u_g(v_g)_k u_h(v_h)_k + sum_j beta_j log1p(x_j)

where v_f is the written 32-bit categorical value and x_j = max(written int, 0),
with a missing integer read as 0 -- exactly the shard value log1p(x_j), so the
teacher is a function of what a model sees after preprocessing.
Weights w and latent vectors u are hashed from (seed, field, value) so tables of
a million values need no storage, and each drifts slowly with the day. So the
teacher JSON plus the raw rows give every row's click probability, and the
Bayes-optimal logloss/AUC printed per day are a limit no model can beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recsearch.data.criteo import MISSING_VALUE, NUM_DENSE, NUM_SPARSE

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        return x ^ (x >> np.uint64(31))


def hash_ints(*parts: np.ndarray | int) -> np.ndarray:
    """Deterministic 64-bit hash of integer arrays/scalars (broadcast)."""
    h = np.asarray(np.uint64(0x243F6A8885A308D3))
    for p in parts:
        h = _mix(np.asarray(h, np.uint64) ^ np.asarray(p).astype(np.int64).astype(np.uint64))
    return np.asarray(h, np.uint64)


def hash_normal(*parts: np.ndarray | int) -> np.ndarray:
    """Standard normal deviates from a hash (Box-Muller)."""
    h1 = hash_ints(*parts)
    h2 = _mix(h1)
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53
    u2 = (h2 >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass
class Preset:
    """Shape of a synthetic dataset."""

    min_cardinality: int
    max_cardinality: int
    rows_per_day: int
    num_informative: int  # categorical fields with a first-order effect
    num_pairs: int
    num_triples: int
    cross_max_cardinality: int  # crosses only among fields up to this size
    rank: int = 4
    target_ctr: float = 0.2


PRESETS = {
    "tiny": Preset(3, 2_000, 5_000, 10, 4, 2, 200),
    "small": Preset(4, 100_000, 100_000, 14, 8, 4, 2_000),
    "medium": Preset(4, 1_000_000, 1_000_000, 16, 10, 5, 20_000),
}


@dataclass
class Teacher:
    """All parameters of the planted model; serializes to and from JSON."""

    seed: int
    preset: str
    cardinality: list[int]
    zipf_exponent: list[float]
    cat_missing_rate: list[float]
    rank_shift_per_day: list[float]
    cat_scale: list[float]  # 0 for pure-noise fields
    pairs: list[list[int]]
    triples: list[list[int]]
    pair_scale: float
    triple_scale: float
    rank: int
    dense_log_mean: list[float]
    dense_log_std: list[float]
    dense_missing_rate: list[float]
    dense_negative_rate: list[float]
    dense_beta: list[float]
    drift_per_day: float
    intercept: float = 0.0
    formula: str = field(default=__doc__ or "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Teacher:
        return Teacher(**d)

    # ------------------------------------------------------------ sampling
    def sample(self, day: int, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw raw integer features (int64, rows x 13; ``None`` as a mask) and
        categorical values (int64, rows x 26, ``MISSING_VALUE`` when empty).

        Returns ``(ints, cats)`` where missing ints are ``np.iinfo(int64).min``.
        """
        ints = np.empty((rows, NUM_DENSE), np.int64)
        for j in range(NUM_DENSE):
            x = np.floor(np.exp(rng.normal(self.dense_log_mean[j], self.dense_log_std[j], rows)) - 1)
            x = np.maximum(x, 0).astype(np.int64)
            neg = rng.random(rows) < self.dense_negative_rate[j]
            x[neg] = -rng.integers(1, 4, int(neg.sum()))
            x[rng.random(rows) < self.dense_missing_rate[j]] = _INT_MISSING
            ints[:, j] = x
        cats = np.empty((rows, NUM_SPARSE), np.int64)
        for f in range(NUM_SPARSE):
            k = self.cardinality[f]
            ranks = _zipf_ranks(k, self.zipf_exponent[f], rows, rng)
            index = (ranks + int(day * self.rank_shift_per_day[f])) % k
            values = (hash_ints(self.seed, 7, f, index) & np.uint64(0xFFFFFFFF)).astype(np.int64)
            values[rng.random(rows) < self.cat_missing_rate[f]] = MISSING_VALUE
            cats[:, f] = values
        return ints, cats

    def logit(self, day: int, ints: np.ndarray, cats: np.ndarray) -> np.ndarray:
        """The teacher's logit from written values only (missing contributes 0)."""
        z = np.full(len(cats), self.intercept, np.float64)
        drift = self.drift_per_day * day
        for f in range(NUM_SPARSE):
            if self.cat_scale[f]:
                v, present = cats[:, f], cats[:, f] != MISSING_VALUE
                w = hash_normal(self.seed, 1, f, v) + drift * hash_normal(self.seed, 2, f, v)
                z += np.where(present, self.cat_scale[f] * w, 0.0)
        latent = {
            f: self._latent(f, cats[:, f], drift) for f in {*sum(self.pairs, []), *sum(self.triples, [])}
        }
        for f, g in self.pairs:
            z += self.pair_scale * (latent[f] * latent[g]).sum(axis=1)
        for f, g, h in self.triples:
            z += self.triple_scale * (latent[f] * latent[g] * latent[h]).sum(axis=1)
        for j in range(NUM_DENSE):
            if self.dense_beta[j]:
                x = np.maximum(ints[:, j], 0)  # missing (int64 min) -> 0
                z += self.dense_beta[j] * np.log1p(x.astype(np.float64))
        return z

    def _latent(self, f: int, v: np.ndarray, drift: float) -> np.ndarray:
        k = np.arange(self.rank)
        u = hash_normal(self.seed, 3, f, v[:, None], k[None, :])
        u = u + drift * hash_normal(self.seed, 4, f, v[:, None], k[None, :])
        return np.where((v != MISSING_VALUE)[:, None], u * self.rank**-0.25, 0.0)

    def prob(self, day: int, ints: np.ndarray, cats: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(day, ints, cats)))


_INT_MISSING = np.iinfo(np.int64).min
_CDF_CACHE: dict[tuple[int, float], np.ndarray] = {}


def _zipf_ranks(k: int, s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Ranks 0..k-1 drawn with P(r) proportional to (r + 1)^-s."""
    cdf = _CDF_CACHE.get((k, s))
    if cdf is None:
        w = np.arange(1, k + 1, dtype=np.float64) ** -s
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
        _CDF_CACHE[(k, s)] = cdf
    return np.minimum(np.searchsorted(cdf, rng.random(n)), k - 1)


def make_teacher(preset_name: str, seed: int) -> Teacher:
    """Draw a teacher for a preset; deterministic for ``seed``."""
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset_name]
    rng = np.random.default_rng([seed, 0xC7A])
    card = np.round(np.geomspace(p.min_cardinality, p.max_cardinality, NUM_SPARSE)).astype(int)
    card = rng.permutation(card)
    informative = rng.choice(NUM_SPARSE, p.num_informative, replace=False)
    cat_scale = np.zeros(NUM_SPARSE)
    cat_scale[informative] = rng.uniform(0.15, 0.5, p.num_informative)
    crossable = [f for f in informative if card[f] <= p.cross_max_cardinality]
    if len(crossable) < 3:
        crossable = sorted(informative, key=lambda f: card[f])[:4]
    pairs = _distinct_tuples(rng, crossable, 2, p.num_pairs)
    triples = _distinct_tuples(rng, crossable, 3, p.num_triples)
    dense_beta = np.zeros(NUM_DENSE)
    dense_informative = rng.choice(NUM_DENSE, 6, replace=False)
    dense_beta[dense_informative] = rng.uniform(-0.4, 0.4, 6)
    log_mean = rng.uniform(0.5, 4.0, NUM_DENSE)
    teacher = Teacher(
        seed=seed,
        preset=preset_name,
        cardinality=[int(c) for c in card],
        zipf_exponent=[float(x) for x in rng.uniform(1.05, 1.35, NUM_SPARSE)],
        cat_missing_rate=[
            float(x) for x in np.where(rng.random(NUM_SPARSE) < 0.4, rng.uniform(0.02, 0.4, NUM_SPARSE), 0.0)
        ],
        rank_shift_per_day=[
            float(x) for x in np.where(rng.random(NUM_SPARSE) < 0.5, rng.uniform(0.1, 2.0, NUM_SPARSE), 0.0)
        ],
        cat_scale=[float(x) for x in cat_scale],
        pairs=pairs,
        triples=triples,
        pair_scale=0.6,
        triple_scale=0.5,
        rank=p.rank,
        dense_log_mean=[float(x) for x in log_mean],
        dense_log_std=[float(x) for x in rng.uniform(0.5, 1.5, NUM_DENSE)],
        dense_missing_rate=[float(x) for x in rng.uniform(0.0, 0.3, NUM_DENSE)],
        dense_negative_rate=[0.0, 0.03] + [0.0] * (NUM_DENSE - 2),
        dense_beta=[float(x) for x in dense_beta],
        drift_per_day=0.03,
    )
    ints, cats = teacher.sample(0, 20_000, np.random.default_rng([seed, 0xB1A5]))
    z = teacher.logit(0, ints, cats)
    teacher.intercept = _solve_intercept(z, p.target_ctr)
    return teacher


def _distinct_tuples(rng: np.random.Generator, pool: list[int], size: int, count: int) -> list[list[int]]:
    out: set[tuple[int, ...]] = set()
    for _ in range(100 * count):
        if len(out) >= count or len(pool) < size:
            break
        out.add(tuple(sorted(int(x) for x in rng.choice(pool, size, replace=False))))
    return [list(t) for t in sorted(out)]


def _solve_intercept(z: np.ndarray, ctr: float) -> float:
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(z + mid)))) < ctr:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)
