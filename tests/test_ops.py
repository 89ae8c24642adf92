"""Every operator: shapes, FX tracing and TorchScript, and the numerics its paper defines."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx

from recsearch.ops import Shapes, create_op, list_ops, op_spec
from recsearch.ops.dense import FM, CrossNet, DotProduct

SHAPES = Shapes(dense_in=12, num_fields=5, emb_dim=8, dense_out=6, fields_out=3, dim_out=4)
ARGS = {  # ops with required args
    "pair_sum": {"left_width": 5},
    "pair_gating": {"left_width": 5},
    "field_cross": {"crosses": [["f0", "f1"], ["f2", "f4"], ["f1", "f3"]]},
}
# ops whose output shape is not (fields_out, dim_out): one field per numeric feature, per cross
OUT_SHAPES = {"dense_buckets": (7, 12, 4), "field_cross": (7, 3, 8)}
FIELD_NAMES = [f"f{i}" for i in range(5)]


@pytest.mark.parametrize("name", list_ops())
def test_op_shapes_fx_and_script(name: str) -> None:
    torch.manual_seed(0)
    names = FIELD_NAMES if op_spec(name).field_names else None
    op = create_op(name, SHAPES, ARGS.get(name), names).eval()
    dense, sparse = torch.randn(7, 12), torch.randn(7, 5, 8)
    out = op(dense, sparse)
    if op_spec(name).output == "dense":
        assert out.shape == (7, 6)
    else:
        assert out.shape == OUT_SHAPES.get(name, (7, 3, 4))
    traced = fx.symbolic_trace(op)
    torch.testing.assert_close(traced(dense, sparse), out)
    scripted = torch.jit.script(op)
    torch.testing.assert_close(scripted(dense, sparse), out)
    # gradients reach every parameter
    op.train()
    if not list(op.parameters()):  # a parameter-free op (field_cross): nothing to reach
        return
    op(dense, sparse).sum().backward()
    for pname, p in op.named_parameters():
        assert p.grad is not None, f"{name}.{pname} gets no gradient"


def test_dot_product_matches_explicit_pairs() -> None:
    op = DotProduct(dense_in=3, num_fields=2, emb_dim=3, dense_out=3)  # dense_in == emb_dim: no projection
    dense, sparse = torch.randn(4, 3), torch.randn(4, 2, 3)
    vecs = [dense, sparse[:, 0], sparse[:, 1]]
    expected = torch.stack([(vecs[i] * vecs[j]).sum(-1) for i in range(3) for j in range(i + 1, 3)], dim=1)
    torch.testing.assert_close(op(dense, sparse), expected)


def test_fm_equals_sum_of_pairwise_products() -> None:
    sparse = torch.randn(4, 5, 3)
    pairs = sum((sparse[:, i] * sparse[:, j]).sum(-1) for i in range(5) for j in range(i + 1, 5))
    torch.testing.assert_close(
        FM(emb_dim=3, dense_out=1, reduce=True)(torch.zeros(4, 1), sparse)[:, 0], pairs
    )


def test_crossnet_layer_formula() -> None:
    op = CrossNet(dense_in=4, dense_out=4, num_layers=1)
    x0 = torch.randn(3, 4)
    w = op.layers[0]
    torch.testing.assert_close(op(x0, torch.zeros(3, 1, 1)), x0 * w(x0) + x0)


def test_bad_names_and_args_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown op 'nope'; known ops: add, add3d, cin, crossnet"):
        create_op("nope", SHAPES)
    with pytest.raises(
        ValueError, match=r"does not take argument\(s\) \['depth'\]; it takes: low_rank, num_layers"
    ):
        create_op("crossnet", SHAPES, {"depth": 3})


def test_add_ops_sum_equal_parts() -> None:
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    add = create_op("add", Shapes(8, 1, 4, dense_out=4), {"parts": 2})
    torch.testing.assert_close(add(torch.cat([a, b], 1), torch.zeros(3, 1, 4)), a + b)
    s, t = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    add3d = create_op("add3d", Shapes(0, 4, 4, fields_out=2, dim_out=4), {"parts": 2})
    torch.testing.assert_close(add3d(torch.zeros(3, 0), torch.cat([s, t], 1)), s + t)
    # layer_norm: the sum normalized (per row; per field for add3d)
    add = create_op("add", Shapes(8, 1, 4, dense_out=4), {"parts": 2, "layer_norm": True})
    torch.testing.assert_close(add(torch.cat([a, b], 1), torch.zeros(3, 1, 4)), F.layer_norm(a + b, (4,)))
    add3d = create_op("add3d", Shapes(0, 4, 4, fields_out=2, dim_out=4), {"parts": 2, "layer_norm": True})
    torch.testing.assert_close(add3d(torch.zeros(3, 0), torch.cat([s, t], 1)), F.layer_norm(s + t, (4,)))
    with pytest.raises(ValueError, match="does not split into 3 equal parts"):
        create_op("add", Shapes(8, 1, 4, dense_out=4), {"parts": 3})


def test_pair_ops_pad_the_narrower_input() -> None:
    from recsearch.ops.dense import PairGating, PairSum

    dense = torch.randn(4, 5)  # left: 2 wide, right: 3 wide
    op = PairSum(dense_in=5, dense_out=3, left_width=2)
    left = F.pad(dense[:, :2], (0, 1))
    torch.testing.assert_close(op(dense, torch.zeros(4, 1, 1)), op.proj(left + dense[:, 2:]))
    gate = PairGating(dense_in=5, dense_out=3, left_width=2)
    expected = gate.proj(dense[:, 2:] * torch.sigmoid(gate.gate(left)))
    torch.testing.assert_close(gate(dense, torch.zeros(4, 1, 1)), expected)
    with pytest.raises(ValueError, match="left_width must be in"):
        PairSum(dense_in=5, dense_out=3, left_width=5)
