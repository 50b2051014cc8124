"""Latent traversals: one row per code dimension, the other dimensions fixed at a base image's code.

Two spans: seed 004's (sec. 4.2: −1 to 1 in steps of 0.1, 21 columns) and a disentanglement_lib-style span of the
dimension's own distribution (its empirical 5 %–95 % quantiles over the evaluated codes, 21 columns; dlib cycles
through the quantiles of a Gaussian fitted to the code). A model with a decoder draws the decoded images; one
without draws, for each target code, the evaluated grid image whose code is nearest (Euclidean distance on codes
scaled by their standard deviation), so its factor classes say which factors the row moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: seed 004 sec. 4.2: each code dimension from −1 to 1 in steps of 0.1
FIXED_VALUES = np.round(np.linspace(-1.0, 1.0, 21), 10)
#: the dlib-style span: quantiles of each code over the evaluated sample
QUANTILES = np.linspace(0.05, 0.95, 21)
SPANS = ("fixed", "quantile")


@dataclass
class Traversal:
    """``images`` (d, n_steps, C, H, W) in [0, 1]; ``values`` (d, n_steps) the code value of each column;
    ``kind`` ``"decoded"`` or ``"nearest"``; ``positions`` (nearest only) the sample rows shown."""

    images: np.ndarray
    values: np.ndarray
    kind: str
    span: str
    positions: np.ndarray | None = None

    def arrays(self) -> list[np.ndarray]:
        return [self.images, self.values] + ([] if self.positions is None else [self.positions])


def span_values(codes: np.ndarray, span: str) -> np.ndarray:
    """(d, 21) values per dimension: ``fixed`` −1…1 by 0.1, or ``quantile`` the code's 5 %–95 % quantiles."""
    if span == "fixed":
        return np.tile(FIXED_VALUES, (codes.shape[1], 1))
    if span == "quantile":
        return np.quantile(codes, QUANTILES, axis=0).T
    raise ValueError(f"unknown traversal span {span!r}; spans: {', '.join(SPANS)}")


def base_position(n: int, seed: int) -> int:
    """The sample row whose code is the traversals' base (seeded)."""
    return int(np.random.default_rng(seed).integers(n))


def targets(base: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(d, n_steps, d) codes: ``base`` with dimension j set to ``values[j, s]``."""
    d, steps = values.shape
    out = np.broadcast_to(base, (d, steps, d)).copy()
    out[np.arange(d), :, np.arange(d)] = values
    return out


def decoded_traversal(decode: Callable[[np.ndarray], np.ndarray], base: np.ndarray, values: np.ndarray,
                      span: str) -> Traversal:
    """Decoded images of :func:`targets`."""
    codes = targets(np.asarray(base, dtype=np.float32), values.astype(np.float32))
    d, steps = values.shape
    images = decode(codes.reshape(d * steps, d))
    return Traversal(images.reshape(d, steps, *images.shape[1:]), values, "decoded", span)


def nearest_positions(codes: np.ndarray, base: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(d, n_steps) rows of ``codes`` nearest to each target code (distance scaled by each code's std)."""
    scale = codes.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    pts = codes / scale
    wanted = targets(base, values) / scale
    sq = (pts ** 2).sum(axis=1)
    flat = wanted.reshape(-1, codes.shape[1])
    dist = (flat ** 2).sum(axis=1)[:, None] - 2.0 * flat @ pts.T + sq[None, :]
    return np.argmin(dist, axis=1).reshape(values.shape)


def nearest_traversal(codes: np.ndarray, images_of: Callable[[np.ndarray], np.ndarray], base: np.ndarray,
                      values: np.ndarray, span: str) -> Traversal:
    """The evaluated images nearest to :func:`targets` (``images_of(rows)`` reads them)."""
    positions = nearest_positions(codes.astype(np.float64), base.astype(np.float64), values.astype(np.float64))
    images = images_of(positions.ravel())
    return Traversal(images.reshape(*positions.shape, *images.shape[1:]), values, "nearest", span, positions)


def factors_moved(classes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(d, n_factors) number of distinct classes of each factor along each row of a nearest-image traversal."""
    rows = classes[positions]  # (d, steps, K)
    return np.array([[len(np.unique(rows[j, :, k])) for k in range(classes.shape[1])] for j in range(len(rows))])


def plot_traversal(trav: Traversal, path: Path, *, row_labels: list[str], title: str) -> tuple[int, int]:
    """Grid of traversal images (rows: code dimensions; columns: values) with row labels; returns (height,
    width) in pixels."""
    from disentbench.viz.figures import image_grid_figure

    return image_grid_figure(trav.images, path, row_labels=row_labels, title=title,
                             col_labels=[f"{v:.1f}" for v in trav.values[0]] if trav.span == "fixed" else None)
