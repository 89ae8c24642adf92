"""Baseline zoo: hand-crafted CTR models as named presets of the architecture spec.

Defaults follow the DistDNAS paper's setting (embedding dim 16, dense width 512/256,
hand-crafted interactions stacked where the paper stacks them); every preset takes
keyword overrides, e.g. ``create_arch("dcn_v2", cross_layers=3)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recsearch.models.arch import INPUT_DENSE, INPUT_SPARSE, validate

D, S = INPUT_DENSE, INPUT_SPARSE


def _mlp_blocks(prefix: str, inputs: list[str], widths: list[int]) -> tuple[list[dict[str, Any]], str]:
    blocks, ref = [], inputs
    for i, w in enumerate(widths):
        name = f"{prefix}{i}"
        blocks.append({"name": name, "op": "linear", "dense": ref, "dense_out": w})
        ref = [name]
    return blocks, ref[0]


def lr(emb_dim: int = 4) -> dict[str, Any]:
    """Logistic regression on the dense features and the ids.

    The head is linear in the embeddings, so each id contributes one learned scalar
    (w . e_id), as in LR; tables are 4 wide because FBGEMM's kernels need widths
    divisible by 4.
    """
    return {"name": "lr", "embedding": {"dim": emb_dim}, "blocks": [], "head": {"inputs": [D, S]}}


def fm(emb_dim: int = 16) -> dict[str, Any]:
    """Factorization machine (Rendle, 2010): first-order terms + FM second-order term."""
    return {
        "name": "fm",
        "embedding": {"dim": emb_dim},
        "blocks": [{"name": "fm", "op": "fm", "sparse": [S], "args": {"reduce": True}}],
        "head": {"inputs": [D, S, "fm"]},
    }


def wide_deep(emb_dim: int = 16, hidden: tuple[int, ...] = (512, 256, 256)) -> dict[str, Any]:
    """Wide & Deep (Cheng et al., 2016): a linear wide part + an MLP deep part."""
    return {
        "name": "wide_deep",
        "embedding": {"dim": emb_dim},
        "blocks": [],
        "head": {"inputs": [D, S], "hidden": list(hidden), "linear_inputs": [D, S]},
    }


def deepfm(emb_dim: int = 16, hidden: tuple[int, ...] = (512, 256, 256)) -> dict[str, Any]:
    """DeepFM (Guo et al., 2017): FM + MLP over shared embeddings."""
    return {
        "name": "deepfm",
        "embedding": {"dim": emb_dim},
        "blocks": [{"name": "fm", "op": "fm", "sparse": [S], "args": {"reduce": True}}],
        "head": {"inputs": [D, S], "hidden": list(hidden), "linear_inputs": [D, S, "fm"]},
    }


def dlrm(
    emb_dim: int = 16, bottom: tuple[int, ...] = (512, 256), top: tuple[int, ...] = (512, 256)
) -> dict[str, Any]:
    """DLRM (Naumov et al., 2019): bottom MLP, dot-product interaction, top MLP.

    The bottom MLP ends at ``emb_dim`` (with ReLU, as TorchRec's DLRM), so the dense
    vector joins the pairwise dot products as one more field.
    """
    blocks, bottom_out = _mlp_blocks("bottom", [D], [*bottom, emb_dim])
    blocks.append({"name": "interaction", "op": "dot_product", "dense": [bottom_out], "sparse": [S]})
    return {
        "name": "dlrm",
        "embedding": {"dim": emb_dim},
        "blocks": blocks,
        "head": {"inputs": [bottom_out, "interaction"], "hidden": list(top)},
    }


def dcn_v2(emb_dim: int = 16, cross_layers: int = 7, hidden: tuple[int, ...] = (512, 256)) -> dict[str, Any]:
    """DCN-v2 (Wang et al., 2021), parallel form: a cross network beside an MLP."""
    deep, deep_out = _mlp_blocks("deep", [D, S], list(hidden))
    blocks = [
        {"name": "cross", "op": "crossnet", "dense": [D, S], "args": {"num_layers": cross_layers}},
        *deep,
    ]
    return {
        "name": "dcn_v2",
        "embedding": {"dim": emb_dim},
        "blocks": blocks,
        "head": {"inputs": ["cross", deep_out]},
    }


def xdeepfm(
    emb_dim: int = 16, cin_layers: tuple[int, ...] = (128, 128), hidden: tuple[int, ...] = (512, 256)
) -> dict[str, Any]:
    """xDeepFM (Lian et al., 2018): CIN + MLP + linear part."""
    deep, deep_out = _mlp_blocks("deep", [D, S], list(hidden))
    blocks = [
        {
            "name": "cin",
            "op": "cin",
            "sparse": [S],
            "fields_out": cin_layers[-1],
            "args": {"layer_sizes": list(cin_layers)},
        },
        {"name": "cin_pool", "op": "sum", "dense": [], "sparse": ["cin"], "dense_out": emb_dim},
        *deep,
    ]
    return {
        "name": "xdeepfm",
        "embedding": {"dim": emb_dim},
        "blocks": blocks,
        "head": {"inputs": ["cin_pool", deep_out], "linear_inputs": [D, S]},
    }


def autoint(
    emb_dim: int = 16, layers: int = 3, heads: int = 2, hidden: tuple[int, ...] = ()
) -> dict[str, Any]:
    """AutoInt (Song et al., 2019): stacked self-attention over fields (dense joins as a field)."""
    blocks: list[dict[str, Any]] = []
    ref = [D, S]
    for i in range(layers):
        name = f"attn{i}"
        blocks.append(
            {
                "name": name,
                "op": "transformer",
                "sparse": ref,
                "args": {"num_heads": heads, "ffn_dim": 4 * emb_dim},
            }
        )
        ref = [name]
    return {
        "name": "autoint",
        "embedding": {"dim": emb_dim},
        "blocks": blocks,
        "head": {"inputs": ref, "hidden": list(hidden)},
    }


_ZOO: dict[str, Callable[..., dict[str, Any]]] = {
    "lr": lr,
    "fm": fm,
    "wide_deep": wide_deep,
    "deepfm": deepfm,
    "dlrm": dlrm,
    "dcn_v2": dcn_v2,
    "xdeepfm": xdeepfm,
    "autoint": autoint,
}


def list_models() -> list[str]:
    return sorted(_ZOO)


def create_arch(name: str, **overrides: Any) -> dict[str, Any]:
    """The architecture spec of a zoo model, with keyword overrides of its defaults."""
    if name not in _ZOO:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    try:
        spec = _ZOO[name](**overrides)
    except TypeError as e:
        raise ValueError(f"model {name!r}: {e}") from None
    return validate({"schema_version": 1, **spec})
