"""The AdaS&S size search (Sec. 3.2, Eq. 8-9): a transformer policy over the fields reads the
current sizes and gives each field a distribution over the candidate sizes; REINFORCE with
the subnet's validation AUC (inherited supernet weights) as the reward, plus the paper's
resource and competition penalties on the distributions:

    P = lambda_r (1/M) sum_i sum_j d_j P_ij - lambda_c (1/M) sum_i ||P_i - 1/T||_2

The paper leaves the policy's size, the baseline and the schedule open: here a
``policy_layers``-layer encoder of width ``policy_dim`` (a token per field: its id and its
current size), ``policy_samples`` subnets per update, advantages normalized over them (a
moving-average baseline, divided by their spread), the next state the best subnet drawn,
and the final sizes the argmax of the last distributions. Seeded: the same seed, the same
sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn


class SizePolicy(nn.Module):
    """Transformer over fields: each field's token is its id and its current size's
    embeddings; returns (F, T) probabilities of its next size."""

    def __init__(self, fields: int, sizes: int, dim: int, layers: int) -> None:
        super().__init__()
        self.field = nn.Embedding(fields, dim)
        self.size = nn.Embedding(sizes, dim)
        layer = nn.TransformerEncoderLayer(
            dim, nhead=4 if dim % 4 == 0 else 1, dim_feedforward=2 * dim, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, sizes)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        tokens = self.field.weight + self.size(state)
        return torch.softmax(self.head(self.encoder(tokens.unsqueeze(0)).squeeze(0)), dim=-1)


def penalty(
    probs: torch.Tensor,
    sizes: torch.Tensor,
    lambda_r: float,
    lambda_c: float,
    field_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 9: expected size per field (resource) minus distance from uniform (competition).
    ``field_weights`` (mean 1) weigh each field's expected size, e.g. by its share of the
    table rows, so that the resource term counts parameters instead of dims."""
    t = probs.shape[1]
    expected = (probs * sizes).sum(dim=1)
    resource = (expected if field_weights is None else expected * field_weights).mean()
    competition = (probs - 1.0 / t).norm(dim=1).mean()
    return lambda_r * resource - lambda_c * competition


def search_sizes(
    reward: Callable[[tuple[int, ...]], float],
    fields: int,
    sizes: list[int],
    *,
    seed: int,
    steps: int,
    samples: int,
    lr: float,
    dim: int,
    layers: int,
    lambda_r: float,
    lambda_c: float,
    field_weights: list[float] | None = None,
) -> dict[str, Any]:
    """One policy search; returns the chosen size index per field, its final distributions
    and the reward history."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    policy = SizePolicy(fields, len(sizes), dim, layers)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    d = torch.tensor(sizes, dtype=torch.float32)
    w = None if field_weights is None else torch.tensor(field_weights, dtype=torch.float32)
    state = torch.full((fields,), len(sizes) - 1, dtype=torch.long)  # s_0: every field at the largest size
    baseline: float | None = None
    history = []
    rows = torch.arange(fields)
    for step in range(steps):
        probs = policy(state)
        actions = torch.multinomial(probs.detach(), samples, replacement=True, generator=gen).T  # (S, F)
        r = torch.tensor([reward(tuple(a.tolist())) for a in actions])
        b = float(r.mean()) if baseline is None else baseline
        advantage = (r - b) / (float(r.std()) + 1e-4 if samples > 1 else 1.0)
        logp = torch.log(probs[rows, actions] + 1e-12).sum(dim=1)
        loss = -(advantage * logp).mean() + penalty(probs, d, lambda_r, lambda_c, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        baseline = 0.9 * b + 0.1 * float(r.mean())
        state = actions[int(torch.argmax(r))]
        if step % 10 == 0 or step + 1 == steps:
            mean_size = float((probs.detach() * d).sum(dim=1).mean())
            history.append(
                {
                    "step": step + 1,
                    "reward_mean": float(r.mean()),
                    "reward_max": float(r.max()),
                    "mean_size": mean_size,
                }
            )
    with torch.no_grad():
        final = policy(state)
    return {
        "choice": [int(x) for x in final.argmax(dim=1)],
        "probs": np.round(final.numpy(), 4).tolist(),
        "history": history,
    }


def random_arch(config: Any, found: dict[str, Any], info: Any, rng: np.random.Generator) -> dict[str, Any]:
    """The found sizes dealt to as many fields chosen at random: the same graph and mix of
    sizes, with the search's choice of which field gets what replaced by chance (the
    comparison's control)."""
    import copy

    spec = copy.deepcopy(found)
    spec.pop("tables", None)  # rebuilt from the data for the new sizes
    spec["name"] = "adass_random"
    dims = found["embedding"].get("dims", {})
    fields = info.sparse_names + info.jagged_names
    chosen = sorted(rng.choice(fields, size=len(dims), replace=False).tolist())
    sizes = [int(v) for v in rng.permutation(list(dims.values()))]
    spec["embedding"]["dims"] = dict(zip(chosen, sizes, strict=True))
    return spec
