"""Evaluation metrics from torchmetrics: AUC, logloss, NE (synced across ranks)."""

from __future__ import annotations

import math

import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAUROC


def binary_entropy(p: float) -> float:
    """Entropy (nats) of a click rate p: the NE denominator.

    Example:
        >>> round(binary_entropy(0.5), 4)
        0.6931
    """
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) if 0 < p < 1 else float("nan")


class CTRMetrics:
    """AUC, logloss and normalized entropy over an evaluation pass.

    NE = logloss / H(p), with p the click rate of the evaluated rows (He et al.,
    "Practical Lessons from Predicting Clicks on Ads at Facebook", 2014).

    Example:
        >>> m = CTRMetrics()
        >>> m.update(torch.tensor([2.0, -2.0, 1.0, -1.0]), torch.tensor([1, 0, 0, 1]))
        >>> round(m.compute()["auc"], 3)
        0.75
    """

    def __init__(self) -> None:
        self.auc = BinaryAUROC()
        self.logloss = MeanMetric()
        self.ctr = MeanMetric()

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits, labels = logits.detach().float().cpu(), labels.detach().cpu()
        self.auc.update(torch.sigmoid(logits), labels.long())
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        self.logloss.update(loss)
        self.ctr.update(labels.float())

    def compute(self) -> dict[str, float]:
        logloss = float(self.logloss.compute())
        p = float(self.ctr.compute())
        return {
            "auc": float(self.auc.compute()),
            "logloss": logloss,
            "ne": logloss / binary_entropy(p),
            "ctr": p,
        }
