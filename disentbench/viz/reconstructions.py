"""Reconstructions beside their inputs (seed 004 Table 4's decoders on frozen encoders; any auto-encoder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

N_IMAGES = 12


@dataclass
class Reconstructions:
    """``inputs`` and ``outputs`` (n, C, H, W) in [0, 1]; ``positions`` the sample rows; ``mse`` per image."""

    inputs: np.ndarray
    outputs: np.ndarray
    positions: np.ndarray
    mse: np.ndarray

    def arrays(self) -> list[np.ndarray]:
        return [self.inputs, self.outputs, self.positions]


def sample_positions(n: int, seed: int, count: int = N_IMAGES) -> np.ndarray:
    """``count`` distinct sample rows drawn with ``seed`` (sorted)."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(count, n), replace=False))


def reconstruct(images: np.ndarray, encode: Callable[[np.ndarray], np.ndarray],
                decode: Callable[[np.ndarray], np.ndarray], positions: np.ndarray) -> Reconstructions:
    """``decode(encode(images))`` of the images at ``positions``."""
    outputs = decode(encode(images))
    mse = ((outputs - images) ** 2).reshape(len(images), -1).mean(axis=1)
    return Reconstructions(images, outputs, positions, mse)


def plot_reconstructions(rec: Reconstructions, path: Path, *, title: str) -> tuple[int, int]:
    """Two rows (inputs, reconstructions) of :func:`~disentbench.viz.figures.image_grid_figure`."""
    from disentbench.viz.figures import image_grid_figure

    return image_grid_figure(np.stack([rec.inputs, rec.outputs]), path, row_labels=["input", "reconstruction"],
                             title=title, col_labels=[f"{m:.3f}" for m in rec.mse])
