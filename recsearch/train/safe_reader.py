"""Reading ``torch.distributed.checkpoint`` metadata without running code from the file.

DCP stores its ``.metadata`` as a pickle, and a pickle can name any importable function to
call while it loads: a checkpoint from someone else could run code when resumed,
evaluated or exported. :class:`SafeFileSystemReader` unpickles it with an allow-list of
the classes DCP metadata is made of (its metadata dataclasses, ``torch.Size``, dtypes,
layouts, paths) and refuses anything else; the tensors themselves are already read with
``torch.load(weights_only=True)`` by DCP.
"""

from __future__ import annotations

import pickle
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

# modules whose classes (never their functions) DCP metadata is built from
_CLASS_MODULES = (
    "torch.distributed.checkpoint.metadata",
    "torch.distributed.checkpoint.filesystem",
    "torch.distributed.checkpoint.planner",
)
_ALLOWED = {
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),  # a layout by name (torch.strided, ...)
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("collections", "OrderedDict"),
}


class UnsafeCheckpointError(ValueError):
    """Checkpoint metadata that refers to something a checkpoint never needs."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        obj = super().find_class(module, name) if self._allowed(module, name) else None
        if obj is None:
            raise UnsafeCheckpointError(
                f"checkpoint metadata refers to {module}.{name}, which DCP metadata never holds; "
                "refusing to load it (a checkpoint can run code: load only checkpoints you trust)"
            )
        return obj

    @staticmethod
    def _allowed(module: str, name: str) -> bool:
        if (module, name) in _ALLOWED:
            return True
        if module == "torch":
            return isinstance(getattr(torch, name, None), torch.dtype)
        if module in _CLASS_MODULES and not name.startswith("__"):
            return isinstance(getattr(__import__(module, fromlist=[name]), name, None), type)
        return False


class SafeFileSystemReader(FileSystemReader):
    """DCP's file reader, with the metadata unpickled by the allow-list above."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        path = self._get_metadata_path(kwargs.get("rank"))
        with self.fs.create_stream(path, "rb") as f:
            metadata = _Unpickler(f).load()
        if not isinstance(metadata, Metadata):
            raise UnsafeCheckpointError(f"{path} does not hold checkpoint metadata")
        storage_meta = getattr(metadata, "storage_meta", None) or StorageMeta()
        storage_meta.load_id = self.load_id
        metadata.storage_meta = storage_meta
        return metadata
