"""Shared drawing helpers: a headless matplotlib, deterministic PNG files, image grids of exact pixel size, and
the hash of the arrays behind a figure (what the tests and the page's footer compare, not PNG bytes)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from disentbench.fileio import atomic_write

DPI = 100
#: image grids: pixels per tile (64 + gap) and the margins for labels
TILE, GAP = 64, 2
LEFT, TOP, BOTTOM = 135, 28, 18


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> tuple[int, int]:
    """Write ``fig`` as a PNG without timestamps or version metadata; returns its (height, width) in pixels."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    width, height = fig.canvas.get_width_height()
    plt.close(fig)
    atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))
    return height, width


def arrays_sha256(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 of the shapes, dtypes and bytes of ``arrays`` (a figure's data)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def grid_size(rows: int, cols: int) -> tuple[int, int]:
    """(height, width) in pixels of :func:`image_grid_figure` for ``rows`` × ``cols`` tiles."""
    return TOP + rows * (TILE + GAP) + BOTTOM, LEFT + cols * (TILE + GAP)


def mosaic(images: np.ndarray) -> np.ndarray:
    """(R, C, ch, H, W) images in [0, 1] -> one (R·(H+GAP), C·(W+GAP), 3) RGB array on a white background."""
    rows, cols, ch, h, w = images.shape
    tiles = np.repeat(images, 3, axis=2) if ch == 1 else images[:, :, :3]
    out = np.ones((rows * (h + GAP), cols * (w + GAP), 3), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = tiles[r, c].transpose(1, 2, 0)
    return np.clip(out, 0.0, 1.0)


def image_grid_figure(images: np.ndarray, path: Path, *, row_labels: Sequence[str], title: str,
                      col_labels: Sequence[str] | None = None) -> tuple[int, int]:
    """A grid of 64×64 images (R, C, ch, 64, 64) with a label per row (and per column); exact pixel size
    :func:`grid_size`. Returns (height, width)."""
    plt = pyplot()
    rows, cols = images.shape[:2]
    height, width = grid_size(rows, cols)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((LEFT / width, BOTTOM / height, 1 - LEFT / width, 1 - (TOP + BOTTOM) / height))
    ax.imshow(mosaic(images), interpolation="nearest", aspect="auto")
    ax.set_yticks([(r + 0.5) * (TILE + GAP) for r in range(rows)], list(row_labels), fontsize=7)
    if col_labels is not None:
        ax.set_xticks([(c + 0.5) * (TILE + GAP) for c in range(cols)], list(col_labels), fontsize=6)
    else:
        ax.set_xticks([])
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, fontsize=8, y=1 - 4 / height, va="top")
    return save(fig, path)
