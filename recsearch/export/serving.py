"""Export a trained run for serving: TorchScript (or torch.export) over plain tensors.

The served ``forward(dense, values, lengths)`` takes
* ``dense``: float B x D raw integer counts (missing as 0); the module applies the
  shards' transform log1p(max(x, 0)) itself, so training and serving agree;
* ``values``: int ids of all sparse features, feature-major (the order of the
  run's tables), each id from the shard vocabularies (0 missing, 1 rare/unseen);
* ``lengths``: int ids per (feature, example), feature-major, F x B flattened;
and returns click probabilities (B,). The TorchScript file loads with ``torch``
and ``fbgemm_gpu`` alone. With ``raw_features`` the file takes raw Criteo values instead of
ids and carries the vocabularies (``recsearch.export.raw``).
"""

from typing import Any

import torch
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recsearch.models.builder import ArchModel


class ServingModel(nn.Module):
    """Plain-tensor front of a trained model, returning probabilities.

    Args:
        model: the trained (unsharded) model.
        feature_names: sparse features in ``values``/``lengths`` order.
        log1p_dense: apply log1p(max(x, 0)) to ``dense`` (inputs are raw counts).
    """

    def __init__(self, *, model: ArchModel, feature_names: list[str], log1p_dense: bool) -> None:
        super().__init__()
        self.model = model
        self.feature_names = feature_names
        self.log1p_dense = log1p_dense

    def forward(self, dense: torch.Tensor, values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.log1p_dense:
            dense = torch.log1p(torch.clamp(dense, min=0.0))
        sparse = KeyedJaggedTensor(keys=self.feature_names, values=values.long(), lengths=lengths.int())
        return torch.sigmoid(self.model(dense, sparse))


def serving_model(model: ArchModel, meta: dict[str, Any]) -> ServingModel:
    transform = str(meta.get("dense_transform") or "")
    return ServingModel(
        model=model,
        feature_names=[t["feature"] for t in model.spec["tables"]],
        log1p_dense=transform.startswith("log1p"),
    ).eval()


def export_torchscript(serving: nn.Module, path: str) -> None:
    """Script via torchrec's FX tracer (KJT-aware) and save."""
    import torchrec.fx

    traced = torchrec.fx.symbolic_trace(serving)
    scripted = torch.jit.script(traced)
    torch.jit.save(scripted, path)


def export_program(serving: nn.Module, example: tuple[torch.Tensor, ...], path: str) -> None:
    """``torch.export`` with a dynamic batch dimension, saved as ``.pt2``."""
    batch = torch.export.Dim("batch", min=2)
    if isinstance(serving, ServingModel):
        ids = torch.export.Dim("ids", min=2)
        num_features = len(serving.feature_names)
        shapes: tuple[dict[int, Any], ...] = ({0: batch}, {0: ids}, {0: num_features * batch})
    else:  # raw features: (dense, categorical), both batch-major
        shapes = ({0: batch}, {0: batch})
    program = torch.export.export(serving, example, dynamic_shapes=shapes, strict=False)
    torch.export.save(program, path)


def export_run(
    run: str, out: str, format: str = "torchscript", raw_features: str | None = None
) -> dict[str, Any]:
    """Export a trained run's model for serving (``torchscript`` or ``export``); with
    ``raw_features`` (the run's shard directory) it scores raw Criteo values. Returns its spec."""
    from recsearch.export.raw import raw_serving_model
    from recsearch.train.checkpoint import load_trained_model
    from recsearch.utils.fileio import check_out_file

    if format not in ("torchscript", "export"):
        raise ValueError(f"unknown export format {format!r}; choose torchscript or export")
    check_out_file(out)
    model, meta = load_trained_model(run)
    b = 4
    serving: nn.Module
    if raw_features:
        serving = raw_serving_model(model, meta, raw_features)
        example: tuple[torch.Tensor, ...] = (
            torch.zeros(b, meta["num_dense"], dtype=torch.float64),
            torch.full((b, serving.num_columns), -1, dtype=torch.long),
        )
    else:
        serving = serving_model(model, meta)
        tables = model.spec["tables"]
        example = (
            torch.zeros(b, meta["num_dense"]),
            torch.zeros(b * len(tables), dtype=torch.long),
            torch.ones(b * len(tables), dtype=torch.int32),
        )
    if format == "torchscript":
        export_torchscript(serving, out)
    else:
        export_program(serving, example, out)
    return model.spec
