"""Adaptive sampling of the AdaS&S supernet (Sec. 3.1, Eq. 4-6): each step trains one subnet,
a size per field drawn from the rates P_E and a subset of fields kept by the rates P_F.

- P_E (per field, per size) favours sizes whose embeddings vary least -- the paper's sign
  for an under-trained table: softmax over the sizes of -LN(variance), the variance a moving
  average of the looked-up embedding values' variance each time that size trains, mixed with
  ``floor`` of uniform so every size keeps training.
- P_F (per field) favours fields with large gradients and embeddings: ``keep`` + 0.2 x LN over
  the fields of lambda_FS x mean |dL/de| + (1 - lambda_FS) x mean |e| (per value, so a wide
  size does not count more), clipped to [0.1, 1]; at least one field is always kept.

The paper writes both as updates P <- P -/+ LN(score) without a step size or a map to
probabilities; this is the form of them that stays a distribution (the choice, in the
presets). Draws depend only on (seed, step) and the scores, so a resumed run draws the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def layer_norm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """(x - mean) / std along ``axis`` (0 where x is constant)."""
    mu = x.mean(axis=axis, keepdims=True)
    sd = x.std(axis=axis, keepdims=True)
    return np.where(sd > 0, (x - mu) / np.where(sd > 0, sd, 1.0), 0.0)


class AdaptiveSampler:
    """Sampling rates and the scores behind them, for F fields and T sizes."""

    def __init__(
        self, fields: int, sizes: int, *, lambda_fs: float, keep: float, floor: float, momentum: float
    ) -> None:
        self.lambda_fs, self.keep, self.floor, self.momentum = lambda_fs, keep, floor, momentum
        self.variance = np.full((fields, sizes), np.nan)  # unseen: treated as the least trained
        self.grad = np.zeros(fields)
        self.norm = np.zeros(fields)

    def size_rates(self) -> np.ndarray:
        """P_E (F, T): each field's distribution over sizes."""
        v = self.variance.copy()
        for i in range(len(v)):
            seen = ~np.isnan(v[i])
            v[i, ~seen] = v[i, seen].min() if seen.any() else 0.0
        z = -layer_norm(v, axis=1)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return (1 - self.floor) * p + self.floor / v.shape[1]  # type: ignore[no-any-return]

    def keep_rates(self) -> np.ndarray:
        """P_F (F,): each field's keep probability."""
        score = self.lambda_fs * self.grad + (1 - self.lambda_fs) * self.norm
        return np.clip(self.keep + 0.2 * layer_norm(score), 0.1, 1.0)  # type: ignore[no-any-return]

    def draw(self, seed: int, step: int) -> tuple[list[int], list[bool]]:
        """The subnet of ``step``: a size index per field and which fields are kept."""
        rng = np.random.default_rng([seed, 0xADA5, step])
        pe, pf = self.size_rates(), self.keep_rates()
        choice = [int(rng.choice(pe.shape[1], p=pe[i])) for i in range(len(pe))]
        keep = rng.random(len(pf)) < pf
        if not keep.any():
            keep[int(np.argmax(pf))] = True
        return choice, keep.tolist()

    def update(
        self, choice: list[int], keep: list[bool], variance: np.ndarray, grad: np.ndarray, norm: np.ndarray
    ) -> None:
        """Fold one step's per-field scores (of the kept fields) into the moving averages."""
        m = self.momentum
        for i, (t, k) in enumerate(zip(choice, keep, strict=True)):
            if not k:
                continue
            old = self.variance[i, t]
            self.variance[i, t] = variance[i] if np.isnan(old) else m * old + (1 - m) * variance[i]
            self.grad[i] = m * self.grad[i] + (1 - m) * grad[i]
            self.norm[i] = m * self.norm[i] + (1 - m) * norm[i]

    def state_dict(self) -> dict[str, Any]:
        return {
            "variance": [[None if np.isnan(x) else float(x) for x in row] for row in self.variance],
            "grad": self.grad.tolist(),
            "norm": self.norm.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.variance = np.array(
            [[np.nan if x is None else x for x in row] for row in state["variance"]], dtype=np.float64
        )
        self.grad = np.asarray(state["grad"], dtype=np.float64)
        self.norm = np.asarray(state["norm"], dtype=np.float64)
