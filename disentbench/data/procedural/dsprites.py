"""``dsprites-procedural``: binary 64x64 renders of square, ellipse and heart on the exact dSprites grid.

The dSprites README fixes the value sets; the geometry below was measured from the 320 frames of the
official ``dsprites.gif`` (deepmind/dsprites-dataset): sprite centres span 16..48 px, a square at scale
1 is 20x20 px (100 px at scale 0.5), an ellipse 26x14 px, a heart 20x18 px with ~225 px of area;
rotation is counter-clockwise on screen. Pixel centres are sampled at ``(col + 0.5, row + 0.5)``; the
sprite centre is ``c = LO + pos * (HI - LO)`` with ``LO, HI = 16, 48`` (posY grows downwards, as rows
do); a pixel is on when ``u = R(-theta) (p - c) / (scale * HALF)`` with ``HALF = 10`` px (y up) passes:

* square: ``max(|u1|, |u2|) <= 1``;
* ellipse: ``(u1 / 1.3)^2 + (u2 / 0.7)^2 <= 1``;
* heart: two lobes ``(|u1| - 0.44)^2 + (u2 - 0.367)^2 <= 0.54^2`` over a triangle with corners
  ``(+-0.98, 0.367)`` and tip ``(0, -0.933)``; the constants were fitted to five heart frames of the gif
  (about 12 of ~224 pixels differ per frame) with the centroid 2 px above the rotation centre, as there.

Only a 30x30 window around the sprite centre is evaluated (every shape fits within 14.2 px of it: the square's corner).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentbench.data.procedural.base import ProceduralDataset
from disentbench.data.spaces import dsprites_space
from disentbench.factors import FactorSpace

LO, HI = 16.0, 48.0
HALF = 10.0
_WINDOW = 30
_CHUNK = 2048
HEART_LOBE_X, HEART_Y, HEART_R, HEART_TIP = 0.44, 0.367, 0.54, -0.933
_OFFSETS = np.arange(-_WINDOW // 2, _WINDOW // 2, dtype=np.float32)


def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == 1:
        return (u * (1.0 / 1.3)) ** 2 + (v * (1.0 / 0.7)) ** 2 <= 1.0
    x = np.abs(u)
    lobe = (x - HEART_LOBE_X) ** 2 + (v - HEART_Y) ** 2 <= HEART_R * HEART_R
    half_width = (HEART_LOBE_X + HEART_R) * (v - HEART_TIP) / (HEART_Y - HEART_TIP)
    return lobe | ((v <= HEART_Y) & (x <= half_width))


def render_dsprites(classes: np.ndarray, space: FactorSpace | None = None) -> np.ndarray:
    """Render factor classes (n, 5) of the dSprites grid as uint8 {0, 1} images (n, 64, 64, 1)."""
    space = space or dsprites_space()
    classes = space.check_classes(classes)
    out = np.zeros((len(classes), 64, 64, 1), dtype=np.uint8)
    for start in range(0, len(classes), _CHUNK):
        _render_chunk(classes[start : start + _CHUNK], space, out[start : start + _CHUNK, :, :, 0])
    return out


def _render_chunk(classes: np.ndarray, space: FactorSpace, out: np.ndarray) -> None:
    n = len(classes)
    values = space.classes_to_values(classes)
    scale, theta = values[:, 1], values[:, 2]
    cx = LO + values[:, 3] * (HI - LO)
    cy = LO + values[:, 4] * (HI - LO)
    col0 = np.floor(cx).astype(np.int64)
    row0 = np.floor(cy).astype(np.int64)
    # pixel-centre offsets from the sprite centre; y points up so theta turns counter-clockwise on screen
    dx = ((col0 - cx).astype(np.float32)[:, None] + 0.5) + _OFFSETS[None, :]
    dy = -(((row0 - cy).astype(np.float32)[:, None] + 0.5) + _OFFSETS[None, :])
    inv = 1.0 / (scale * HALF)
    cos = (np.cos(theta) * inv).astype(np.float32)[:, None, None]
    sin = (np.sin(theta) * inv).astype(np.float32)[:, None, None]
    dxw = dx[:, None, :]
    dyw = dy[:, :, None]
    masks = np.empty((n, _WINDOW, _WINDOW), dtype=bool)
    for shape in range(3):
        sel = np.flatnonzero(classes[:, 0] == shape)
        if sel.size:
            u = cos[sel] * dxw[sel] + sin[sel] * dyw[sel]
            v = cos[sel] * dyw[sel] - sin[sel] * dxw[sel]
            masks[sel] = _shape_mask(shape, u, v)
    top = row0 - _WINDOW // 2
    left = col0 - _WINDOW // 2
    # clip every window to the image: rows [r0, r1) of the image take rows [r0 - top, r1 - top) of the window
    r0, r1 = np.maximum(top, 0), np.minimum(top + _WINDOW, 64)
    c0, c1 = np.maximum(left, 0), np.minimum(left + _WINDOW, 64)
    bounds = zip(r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist(), top.tolist(), left.tolist())
    for k, (a, b, c, d, t, l) in enumerate(bounds):
        out[k, a:b, c:d] = masks[k, a - t : b - t, c - l : d - l]


class ProceduralDSprites(ProceduralDataset):
    """The dSprites factor grid rendered on demand (no download); never a stand-in for ``dsprites``."""

    name = "dsprites-procedural"
    version = "2"  # 1: first geometry guess; 2: geometry measured on the official gif
    channels = 1
    pixel_max = 1

    def __init__(self, *, cache: bool = False, cache_dir: str | Path | None = None) -> None:
        super().__init__(dsprites_space(), cache=cache, cache_dir=cache_dir)

    def render_classes(self, classes: np.ndarray) -> np.ndarray:
        return render_dsprites(classes, self._space)
