"""``shapes3d-procedural``: a Shapes3D look-alike drawn by a small vectorised ray-caster.

The 3dshapes README fixes the factor value sets; the scene imitates the frames of its ``3dshapes.gif``
(sky band over the top fifth, a room corner behind the object, floor line about two thirds down).
World y up: the object stands on the floor ``y = 0`` at the origin; two walls ``x + z = D`` and
``z - x = D`` (``D = 7``) of height 3.35 meet behind it; above them is a light-blue sky. Object size
``b = 0.7 * scale``: cube (half side ``b``), cylinder (radius ``b``, height ``2b``), sphere (radius ``b``),
capsule (radius ``0.65 b``, height ``2.6 b``). The camera orbits the object at radius 7 and height 2,
looking at ``(0, 1.65, 0)`` with a 40 degree field of view; ``orientation`` is its azimuth in degrees
(the corner moves sideways). Shading is Lambertian for a fixed light ``l`` from the front left:
``a + (1 - a) max(0, n . l)`` with ambient ``a = 0.35`` on the object and 0.55 on the room; the object's
shadow darkens floor and walls to 0.35. Colours are ``hsv(hue, 1, 1)``; each pixel averages 2x2 rays.

The geometry depends only on (scale, shape, orientation), 480 combinations, so each combination is
ray-cast once into per-pixel weights ``A[p, k]`` (shaded coverage of sky, floor, wall, object) and an
image is ``A @ palette`` with the hue colours of that image: renders stay a pure function of the factors.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from disentbench.data.procedural.base import ProceduralDataset
from disentbench.data.spaces import shapes3d_space

RES = 64
SUPERSAMPLE = 2
CORNER_D, WALL_H = 7.0, 3.35
CAMERA_RADIUS, CAMERA_HEIGHT, TARGET_Y, FOV_DEG = 7.0, 2.0, 1.65, 40.0
SKY_RGB = (0.62, 0.87, 0.97)
LIGHT = np.array([-0.6, 0.8, -0.5]) / np.linalg.norm([-0.6, 0.8, -0.5])
AMBIENT, ROOM_AMBIENT, SHADOW = 0.35, 0.55, 0.35
SIZE = 0.7
SKY, FLOOR, WALL, OBJECT = range(4)
_CHUNK = 512
_S2 = np.sqrt(0.5)


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


def _plane(o, d, normal, offset):
    """Distance along each ray to the plane ``normal . p = offset`` (inf when parallel or behind)."""
    denom = d @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (offset - o @ normal) / denom
    return np.where(np.isfinite(t) & (t > 1e-9), t, np.inf)


_WALL_NORMALS = np.array([[_S2, 0.0, _S2], [-_S2, 0.0, _S2]])  # outward: x + z = D and z - x = D


def _background(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance, label and unshadowed shade of the room (floor, two walls, sky) along every ray."""
    d_wall = CORNER_D * _S2
    t_all = np.stack(
        [_plane(o, d, np.array([0.0, 1.0, 0.0]), 0.0)] + [_plane(o, d, n, d_wall) for n in _WALL_NORMALS]
    )
    hit = o + np.where(np.isfinite(t_all), t_all, 0.0)[..., None] * d
    inside = (hit @ _WALL_NORMALS.T <= d_wall + 1e-9).all(axis=-1)  # on the room's side of both walls
    valid = np.isfinite(t_all) & inside & (hit[..., 1] >= -1e-9)
    valid[1:] &= hit[1:, ..., 1] <= WALL_H
    t_all = np.where(valid, t_all, np.inf)
    which = np.argmin(t_all, axis=0)
    t = np.min(t_all, axis=0)
    normals = np.array([[0.0, 1.0, 0.0], *(-_WALL_NORMALS)])
    shade_of = ROOM_AMBIENT + (1.0 - ROOM_AMBIENT) * np.maximum(normals @ LIGHT, 0.0)
    sky = ~np.isfinite(t)
    label = np.where(sky, SKY, np.where(which == 0, FLOOR, WALL))
    shade = np.where(sky, 1.0, shade_of[which])
    return t, label, shade


def _dot(a, b):
    return np.sum(a * b, axis=-1)


def _sphere(o, d, centre, r):
    oc = o - centre
    b = _dot(d, oc)
    disc = b * b - (_dot(oc, oc) - r * r)
    with np.errstate(invalid="ignore"):
        t = -b - np.sqrt(disc)
    t = np.where((disc >= 0) & (t > 1e-9), t, np.inf)
    normal = (o + np.where(np.isfinite(t), t, 0.0)[..., None] * d - centre) / r
    return t, normal


def _box(o, d, lo, hi):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - o) / d
        t2 = (hi - o) / d
    tnear = np.minimum(t1, t2)
    tmin = np.max(tnear, axis=-1)
    tmax = np.min(np.maximum(t1, t2), axis=-1)
    t = np.where((tmax >= tmin) & (tmin > 1e-9), tmin, np.inf)
    axis = np.argmax(tnear, axis=-1)
    normal = np.zeros_like(d)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1)
    return t, normal


def _vertical_cylinder(o, d, r, y0, y1, cap: bool):
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = ox * d[..., 0] + oz * d[..., 2]
    c = ox**2 + oz**2 - r * r
    disc = b * b - a * c
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-b - np.sqrt(disc)) / a
    y = oy + t * d[..., 1]
    t = np.where((disc >= 0) & (t > 1e-9) & (y >= y0) & (y <= y1), t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0.0)[..., None] * d
    normal = np.stack([p[..., 0] / r, np.zeros_like(t), p[..., 2] / r], axis=-1)
    if cap:
        with np.errstate(divide="ignore", invalid="ignore"):
            tc = (y1 - oy) / d[..., 1]
        pc = o + np.where(np.isfinite(tc), tc, 0.0)[..., None] * d
        tc = np.where((tc > 1e-9) & (pc[..., 0] ** 2 + pc[..., 2] ** 2 <= r * r), tc, np.inf)
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
    """Distance (inf for a miss) and unit normal of the object along every ray (``o`` (3,) or per ray)."""
    b = SIZE * scale
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


def _bounding_hit(o, d, scale: float) -> np.ndarray:
    """Rays that can meet the object: those whose line passes within 2b of (0, 1.3b, 0), ahead of the origin."""
    b = SIZE * scale
    v = np.array([0.0, 1.3 * b, 0.0]) - o
    along = np.einsum("...i,...i->...", v, d)
    miss2 = np.einsum("...i,...i->...", v, v) - along * along
    return (miss2 <= 4.0 * b * b) & (along > -2.0 * b)


def coverage_weights(shape: int, scale: float, azimuth_deg: float) -> np.ndarray:
    """Per-pixel shaded coverage (RES*RES, 4) of sky, floor, wall and object for one geometry."""
    o, d, t_bg, label, shade = _room(float(azimuth_deg))
    label, shade = label.copy(), shade.copy()
    near = _bounding_hit(o, d, scale)
    t_obj, normal = object_hit(o, d[near], shape, scale)
    on_obj = t_obj < t_bg[near]
    label[near] = np.where(on_obj, OBJECT, label[near])
    shade[near] = np.where(on_obj, AMBIENT + (1.0 - AMBIENT) * np.maximum(normal @ LIGHT, 0.0), shade[near])
    # shadow: room points whose ray towards the light meets the object are darkened to SHADOW
    room = np.flatnonzero((label == FLOOR) | (label == WALL))
    p = o + t_bg.reshape(-1)[room, None] * d.reshape(-1, 3)[room]
    towards = np.broadcast_to(LIGHT, p.shape)
    near = _bounding_hit(p, towards, scale)
    blocked = np.isfinite(object_hit(p[near], towards[near], shape, scale)[0])
    flat = shade.reshape(-1)
    flat[room[near]] = np.where(blocked, SHADOW, flat[room[near]])
    weights = np.zeros((RES * RES, 4))
    for k in range(4):
        weights[:, k] = np.where(label == k, shade, 0.0).mean(axis=1)
    return weights.astype(np.float32)


class ProceduralShapes3D(ProceduralDataset):
    """The 3dshapes factor grid rendered on demand by a ray-caster; never a stand-in for ``shapes3d``."""

    name = "shapes3d-procedural"
    version = "2"  # 1: box room; 2: room corner, sky band and shadows matched to the official gif
    channels = 3

    def __init__(self, *, cache: bool = False, cache_dir: str | Path | None = None) -> None:
        super().__init__(shapes3d_space(), cache=cache, cache_dir=cache_dir)
        self._geometry: dict[tuple[int, int, int], np.ndarray] = {}
        self._lock = threading.Lock()
        self._hue_rgb = hue_to_rgb(self._space.values[0]).astype(np.float32)

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

