"""The weighted sum over every cross of one order, without enumerating the crosses.

PROFIT (Gao et al., NeurIPS 2021), Eq. 4 and 6: the order-o layer of the search network
is sum_c A_c (f_c1 * ... * f_co) over all C(M, o) field subsets c, with the symmetric CP
weights A_c = sum_r prod_k beta_r[c_k]. Exchanging the sums,

    sum_c A_c prod_k f_ck = sum_r sum_c prod_k (beta_r[c_k] f_ck) = sum_r e_o(g_r1, ..., g_rM),

the o-th elementary symmetric polynomial of the M vectors g_rm = beta_r[m] f_m (element-wise
per embedding coordinate). Newton's identities give e_1..e_O from the power sums
p_k = sum_m g_m^k in O(R M d O) per example:  k e_k = sum_{i=1..k} (-1)^(i-1) e_(k-i) p_i.
"""

from __future__ import annotations

import torch


def elementary_symmetric(x: torch.Tensor, max_order: int) -> list[torch.Tensor]:
    """e_1..e_O over the field axis (-2) of ``x`` (..., M, d): a list of (..., d) tensors."""
    powers = [x.sum(dim=-2)]
    xk = x
    for _ in range(2, max_order + 1):
        xk = xk * x
        powers.append(xk.sum(dim=-2))
    e = [torch.ones_like(powers[0])]
    for k in range(1, max_order + 1):
        total = torch.zeros_like(powers[0])
        for i in range(1, k + 1):
            term = e[k - i] * powers[i - 1]
            total = total + term if i % 2 == 1 else total - term
        e.append(total / k)
    return e[1:]


def cp_cross_sum(fields: torch.Tensor, beta: torch.Tensor, order: int) -> torch.Tensor:
    """sum over every cross c of ``order`` of A_c (f_c1 * ... * f_co), A from ``beta``.

    Args:
        fields: (B, M, d) field embeddings.
        beta: (R, M) the order's CP components.
        order: o >= 1.

    Returns:
        (B, d).
    """
    g = beta.unsqueeze(0).unsqueeze(-1) * fields.unsqueeze(1)  # B, R, M, d
    return elementary_symmetric(g, order)[order - 1].sum(dim=1)


def full_cross_sum(fields: torch.Tensor, weights: torch.Tensor, order: int) -> torch.Tensor:
    """The same sum with one free weight per cross (the full space, Eq. 5; AutoFIS-like).

    ``weights`` is an M^o tensor of which only strictly increasing index tuples count
    (the rest is masked). Orders 1-3.
    """
    m = fields.shape[1]
    w = weights * increasing_mask(m, order).to(weights)
    if order == 1:
        return torch.einsum("bmk,m->bk", fields, w)
    if order == 2:
        return torch.einsum("bik,ij,bjk->bk", fields, w, fields)
    if order == 3:
        inner = torch.einsum("ijl,blk->bijk", w, fields)
        return torch.einsum("bik,bjk,bijk->bk", fields, fields, inner)
    raise ValueError(f"the full space holds orders 1-3, got {order}")


def increasing_mask(m: int, order: int) -> torch.Tensor:
    """1 where the M^o index tuple is strictly increasing (each cross once), else 0."""
    idx = torch.arange(m)
    mask = torch.ones([m] * order, dtype=torch.bool)
    for k in range(order - 1):
        shape_a = [1] * order
        shape_b = [1] * order
        shape_a[k], shape_b[k + 1] = m, m
        mask = mask & (idx.view(shape_a) < idx.view(shape_b))
    return mask.float()
