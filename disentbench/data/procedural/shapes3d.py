"""``shapes3d-procedural``: a Shapes3D look-alike drawn by a small vectorised ray-caster.

Scene (world y up, our choice; the 3dshapes README fixes only the factor value sets): floor ``y = 0``,
a back wall ``z = 4`` and side walls ``x = +-4`` of height 3, a sky band above them. The object stands on
the floor at the origin with size ``b = 0.75 * scale``: cube (half side ``b``), cylinder (radius ``b``,
height ``2b``), sphere (radius ``b``), capsule (radius ``0.65 b``, height ``2.6 b``). The camera orbits
the object at radius 6 and height 2, looking at ``(0, 1, 0)`` with a 45 degree field of view;
``orientation`` is its azimuth in degrees. Shading is Lambertian, ``0.35 + 0.65 max(0, n . l)`` for a
fixed light direction ``l``; colours are ``hsv(hue, 1, 1)``; each pixel averages 2x2 rays.

The geometry depends only on (scale, shape, orientation), 480 combinations, so each combination is
ray-cast once into per-pixel weights ``A[p, k]`` (shaded coverage of sky, floor, wall, object) and an
image is ``A @ palette`` with the hue colours of that image: renders stay a pure function of the factors.
"""

from __future__ import annotations

import functools
import threading

from pathlib import Path

import numpy as np

from disentbench.data.base import GroundTruthDataset
from disentbench.data.procedural.cache import render_cache as _render_cache
from disentbench.data.spaces import shapes3d_space
from disentbench.factors import FactorSpace

RES = 64
SUPERSAMPLE = 2
WALL_X, WALL_Z, WALL_FRONT_Z, WALL_H = 4.0, 4.0, -3.0, 3.0
CAMERA_RADIUS, CAMERA_HEIGHT, TARGET_Y, FOV_DEG = 6.0, 2.0, 1.0, 45.0
SKY_RGB = (0.80, 0.88, 1.00)
LIGHT = np.array([-0.4, 1.0, -0.6]) / np.linalg.norm([-0.4, 1.0, -0.6])
AMBIENT = 0.35
SKY, FLOOR, WALL, OBJECT = range(4)
_CHUNK = 512


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """``hsv(hue, 1, 1)`` as RGB in [0, 1]: ``clip(|6h - 3| - 1)`` for red and its shifts by 1/3 for green/blue."""
    hue = np.asarray(hue, dtype=np.float64)[..., None]
    shifts = np.array([0.0, 2.0 / 3.0, 1.0 / 3.0])
    return np.clip(np.abs(np.mod(hue + shifts, 1.0) * 6.0 - 3.0) - 1.0, 0.0, 1.0)


def camera_rays(azimuth_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera origin (3,) and unit ray directions (RES*RES, SUPERSAMPLE**2, 3) in row-major pixel order."""
    phi = np.deg2rad(azimuth_deg)
    origin = np.array([CAMERA_RADIUS * np.sin(phi), CAMERA_HEIGHT, -CAMERA_RADIUS * np.cos(phi)])
    forward = np.array([0.0, TARGET_Y, 0.0]) - origin
    forward /= np.linalg.norm(forward)
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    up = np.cross(forward, right)
    half = np.tan(np.deg2rad(FOV_DEG) / 2.0)
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    pos = (np.arange(RES)[:, None] + sub[None, :]).reshape(-1) / RES  # (RES*S,) in (0, 1)
    x = (2.0 * pos - 1.0) * half
    y = (1.0 - 2.0 * pos) * half
    # rays indexed [row, sub_row, col, sub_col]
    d = forward + y[:, None, None] * up + x[None, :, None] * right
    d = d.reshape(RES, SUPERSAMPLE, RES, SUPERSAMPLE, 3).transpose(0, 2, 1, 3, 4)
    d = d.reshape(RES * RES, SUPERSAMPLE * SUPERSAMPLE, 3)
    return origin, d / np.linalg.norm(d, axis=-1, keepdims=True)


def _background(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance, label and shade of the room (floor, walls, sky) along every ray."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[..., 1] < 0, -o[1] / d[..., 1], np.inf)
        t_back = np.where(d[..., 2] > 0, (WALL_Z - o[2]) / d[..., 2], np.inf)
        t_left = np.where(d[..., 0] < 0, (-WALL_X - o[0]) / d[..., 0], np.inf)
        t_right = np.where(d[..., 0] > 0, (WALL_X - o[0]) / d[..., 0], np.inf)
    t_all = np.stack([t_floor, t_back, t_left, t_right])
    hit = o + np.where(np.isfinite(t_all), t_all, 0.0)[..., None] * d
    x, y, z = hit[..., 0], hit[..., 1], hit[..., 2]
    valid = np.stack(
        [
            (np.abs(x[0]) <= WALL_X) & (z[0] <= WALL_Z),
            (np.abs(x[1]) <= WALL_X) & (y[1] >= 0) & (y[1] <= WALL_H),
            (z[2] >= WALL_FRONT_Z) & (z[2] <= WALL_Z) & (y[2] >= 0) & (y[2] <= WALL_H),
            (z[3] >= WALL_FRONT_Z) & (z[3] <= WALL_Z) & (y[3] >= 0) & (y[3] <= WALL_H),
        ]
    ) & np.isfinite(t_all)
    t_all = np.where(valid, t_all, np.inf)
    which = np.argmin(t_all, axis=0)
    t = np.min(t_all, axis=0)
    normals = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    shade_of = AMBIENT + (1.0 - AMBIENT) * np.maximum(normals @ LIGHT, 0.0)
    label = np.where(which == 0, FLOOR, WALL)
    shade = shade_of[which]
    sky = ~np.isfinite(t)
    label = np.where(sky, SKY, label)
    shade = np.where(sky, 1.0, shade)
    return t, label, shade


def _sphere(o, d, centre, r):
    oc = o - centre
    b = d @ oc
    disc = b * b - (oc @ oc - r * r)
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    normal = (o + np.where(np.isfinite(t), t, 0.0)[..., None] * d - centre) / r
    return t, normal


def _box(o, d, lo, hi):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - o) / d
        t2 = (hi - o) / d
    tnear = np.minimum(t1, t2)
    tmin = np.max(tnear, axis=-1)
    tmax = np.min(np.maximum(t1, t2), axis=-1)
    t = np.where((tmax >= tmin) & (tmin > 0), tmin, np.inf)
    axis = np.argmax(tnear, axis=-1)
    normal = np.zeros_like(d)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    return t, normal


def _vertical_cylinder(o, d, r, y0, y1, cap: bool):
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = o[0] * d[..., 0] + o[2] * d[..., 2]
    c = o[0] ** 2 + o[2] ** 2 - r * r
    disc = b * b - a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
    y = o[1] + t * d[..., 1]
    t = np.where((disc >= 0) & (t > 0) & (y >= y0) & (y <= y1), t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0.0)[..., None] * d
    normal = np.stack([p[..., 0] / r, np.zeros_like(t), p[..., 2] / r], axis=-1)
    if cap:
        with np.errstate(divide="ignore", invalid="ignore"):
            tc = (y1 - o[1]) / d[..., 1]
        pc = o + np.where(np.isfinite(tc), tc, 0.0)[..., None] * d
        tc = np.where((tc > 0) & (pc[..., 0] ** 2 + pc[..., 2] ** 2 <= r * r), tc, np.inf)
        use = tc < t
        t = np.where(use, tc, t)
        normal = np.where(use[..., None], np.array([0.0, 1.0, 0.0]), normal)
    return t, normal


def _nearest(*hits):
    ts = np.stack([h[0] for h in hits])
    which = np.argmin(ts, axis=0)
    normal = np.take_along_axis(np.stack([h[1] for h in hits]), which[None, ..., None], 0)[0]
    return np.min(ts, axis=0), normal


def object_hit(o: np.ndarray, d: np.ndarray, shape: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance (inf for a miss) and unit normal of the object along every ray."""
    b = 0.75 * scale
    if shape == 0:
        return _box(o, d, np.array([-b, 0.0, -b]), np.array([b, 2 * b, b]))
    if shape == 1:
        return _vertical_cylinder(o, d, b, 0.0, 2 * b, cap=True)
    if shape == 2:
        return _sphere(o, d, np.array([0.0, b, 0.0]), b)
    r = 0.65 * b
    return _nearest(
        _vertical_cylinder(o, d, r, r, 2.6 * b - r, cap=False),
        _sphere(o, d, np.array([0.0, r, 0.0]), r),
        _sphere(o, d, np.array([0.0, 2.6 * b - r, 0.0]), r),
    )


@functools.lru_cache(maxsize=32)
def _room(azimuth_deg: float):
    """Camera rays and the room seen along them for one azimuth (shared by all objects)."""
    o, d = camera_rays(azimuth_deg)
    return (o, d, *_background(o, d))


def coverage_weights(shape: int, scale: float, azimuth_deg: float) -> np.ndarray:
    """Per-pixel shaded coverage (RES*RES, 4) of sky, floor, wall and object for one geometry."""
    o, d, t_bg, label, shade = _room(float(azimuth_deg))
    # only rays through the object's bounding sphere (centre (0, 1.3b, 0), radius 2b) can hit it
    b = 0.75 * scale
    t_bound, _ = _sphere(o, d, np.array([0.0, 1.3 * b, 0.0]), 2.0 * b)
    near = np.isfinite(t_bound)
    t_obj, normal = object_hit(o, d[near], shape, scale)
    on_obj = t_obj < t_bg[near]
    label, shade = label.copy(), shade.copy()
    label[near] = np.where(on_obj, OBJECT, label[near])
    shade[near] = np.where(on_obj, AMBIENT + (1.0 - AMBIENT) * np.maximum(normal @ LIGHT, 0.0), shade[near])
    weights = np.zeros((RES * RES, 4))
    for k in range(4):
        weights[:, k] = np.where(label == k, shade, 0.0).mean(axis=1)
    return weights.astype(np.float32)


class ProceduralShapes3D(GroundTruthDataset):
    """The 3dshapes factor grid rendered on demand by a ray-caster; never a stand-in for ``shapes3d``."""

    name = "shapes3d-procedural"
    version = "1"
    channels = 3

    def __init__(self, *, cache: bool = False, cache_dir: str | Path | None = None) -> None:
        self._space = shapes3d_space()
        self._cache = _render_cache(self, cache, cache_dir)
        self._geometry: dict[tuple[int, int, int], np.ndarray] = {}
        self._lock = threading.Lock()
        self._hue_rgb = hue_to_rgb(self._space.values[0]).astype(np.float32)

    @property
    def factor_space(self) -> FactorSpace:
        return self._space

    def _weights(self, key: tuple[int, int, int]) -> np.ndarray:
        with self._lock:
            if key not in self._geometry:
                scale_c, shape_c, orient_c = key
                self._geometry[key] = coverage_weights(
                    shape_c, float(self._space.values[3][scale_c]), float(self._space.values[5][orient_c])
                )
            return self._geometry[key]

    def render_classes(self, classes: np.ndarray) -> np.ndarray:
        """uint8 images (n, 64, 64, 3) for factor classes (n, 6)."""
        classes = self._space.check_classes(classes)
        geometry_ids, inverse = np.unique(classes[:, 3:6], axis=0, return_inverse=True)
        table = np.stack([self._weights(tuple(int(v) for v in row)) for row in geometry_ids])
        palette = np.empty((len(classes), 4, 3), dtype=np.float32)
        palette[:, SKY] = np.asarray(SKY_RGB, dtype=np.float32) * 255.0
        for k, label in enumerate((FLOOR, WALL, OBJECT)):
            palette[:, label] = self._hue_rgb[classes[:, k]] * 255.0
        out = np.empty((len(classes), RES, RES, 3), dtype=np.uint8)
        inverse = inverse.reshape(-1)
        for start in range(0, len(classes), _CHUNK):
            sl = slice(start, start + _CHUNK)
            img = np.matmul(table[inverse[sl]], palette[sl])
            np.add(img, 0.5, out=img)
            out[sl] = img.reshape(-1, RES, RES, 3).astype(np.uint8)
        return out

    def _read(self, indices: np.ndarray) -> np.ndarray:
        def render(i: np.ndarray) -> np.ndarray:
            return self.render_classes(self._space.index_to_classes(i))

        return self._cache.read(indices, render) if self._cache else render(indices)
