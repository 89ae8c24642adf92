"""Matplotlib with the file-only Agg backend; figures are written through iopath."""

from __future__ import annotations

from typing import Any

from iopath.common.file_io import g_pathmgr


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str) -> None:
    """Write ``fig`` as PNG to ``path`` (any iopath path) and close it."""
    with g_pathmgr.open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    pyplot().close(fig)
