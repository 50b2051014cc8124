"""``mpi3d-procedural``: an MPI3D-toy look-alike drawn by a small vectorised numpy renderer.

Dataset imitated: Gondal et al. 2019, "On the Transfer of Inductive Bias from Simulation to the Real World: a New
Disentanglement Dataset" (NeurIPS 2019; github.com/rr-learning/disentanglement_dataset). Its README fixes the grid
(object colour 6, shape 6, size 2, camera height 3, background colour 3, horizontal axis 40, vertical axis 40, in that
order, row-major); the scene below imitates the frames of the README's ``toy1.gif`` / ``toy2.gif``, which show
``mpi3d_toy`` images at their 64x64 pixels.

World y up, units of the arm's joint height. A dark platform ``y = 0`` carries a coloured ring (radii 3.04..3.81,
the "background colour") around the robot: a base flange, a vertical column and a joint housing at height 1. From
the joint a rod of length 0.85 holds the object at its tip, the object's axis along the rod. ``horizontal_axis``
tilts the rod from the vertical (-105..105 degrees, positive away from the camera when the arm faces it);
``vertical_axis`` turns the arm about the vertical axis (-100..100 degrees, positive to the right). The camera
stands 5.05 behind the robot at height 6.0 (top), 3.55 (center) or 2.0 (bottom), aimed at ``(0, 0.78, 0)``, focal
length 108 px: a least-squares fit to the ring, base and joint positions in the gif frames. Objects (half-size
0.31 small, 0.42 large): cone, cube, cylinder, hexagonal prism, square pyramid, sphere; round ones are 12-sided.
Shading is Lambertian for a fixed light from above-left of the camera, ambient 0.35. Measured and guessed values
are listed in docs/data.md.

Speed: the platform, ring and column are drawn once per camera (4x4 rays per pixel); an image then only adds the
rod (an anti-aliased 2-D segment) and the object, ray-cast with 2x2 rays per pixel in the smallest window that
holds the projection of its vertices. Everything is element-wise float32 numpy, so an image does not depend on
the batch it is drawn in.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from disentbench.data.procedural.base import ProceduralDataset
from disentbench.data.spaces import mpi3d_space
from disentbench.factors import FactorSpace

RES = 64
CAMERA_DISTANCE, CAMERA_HEIGHTS, TARGET_Y, FOCAL = 5.05, (6.0, 3.55, 2.0), 0.78, 108.0
RING_INNER, RING_OUTER = 3.04, 3.81
JOINT_Y, ROD_LENGTH, ROD_HALF_WIDTH_PX = 1.0, 0.85, 0.6
TILT_DEG, AZIMUTH_DEG = np.linspace(-105.0, 105.0, 40), np.linspace(-100.0, 100.0, 40)
OBJECT_HALF_SIZE = (0.31, 0.42)
LIGHT = np.array([-0.35, 0.8, -0.5]) / np.linalg.norm([-0.35, 0.8, -0.5])
AMBIENT = 0.35
FLOOR_RGB = (52.0, 52.0, 52.0)
ROD_RGB = (118.0, 118.0, 118.0)
#: white, green, red, blue, brown, olive (README order): the lit values measured in the toy gifs / 0.85
OBJECT_RGB = ((245, 245, 245), (47, 176, 47), (241, 0, 0), (49, 122, 235), (99, 61, 41), (144, 142, 58))
#: purple, sea green, salmon
RING_RGB = ((104, 79, 148), (75, 103, 99), (110, 79, 88))
OBJECT_WINDOWS, ROD_WINDOW, SUPERSAMPLE, SCENE_SUPERSAMPLE = (12, 16, 20, 24, 32, 40), 24, 2, 4
_CHUNK = 512
_EPS = np.float32(1e-6)


# -- geometry helpers ------------------------------------------------------------------------------------------
def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Last-axis dot product written out (no BLAS: the result never depends on the batch shape)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _polygon_solid(sides: int, apothem: float, height: float, pyramid: bool, phase: float):
    """A regular prism or pyramid on ``z in [0, height]``: its planes ``n . p <= c`` (rows ``(nx, ny, nz, c)``)
    and its vertices (rows ``(x, y, z)``)."""
    phi = phase + 2.0 * np.pi * np.arange(sides) / sides
    slope = apothem / height if pyramid else 0.0
    side = np.stack([np.cos(phi), np.sin(phi), np.full(sides, slope), np.full(sides, apothem)], axis=1)
    side /= np.linalg.norm(side[:, :3], axis=1, keepdims=True)
    caps = [[0.0, 0.0, -1.0, 0.0]] + ([] if pyramid else [[0.0, 0.0, 1.0, height]])
    corner = apothem / np.cos(np.pi / sides)
    ring = np.stack([corner * np.cos(phi + np.pi / sides), corner * np.sin(phi + np.pi / sides), 0.0 * phi], axis=1)
    top = np.array([[0.0, 0.0, height]]) if pyramid else ring + [0.0, 0.0, height]
    planes = np.concatenate([side, np.array(caps)]).astype(np.float32)
    return planes, np.concatenate([ring, top]).astype(np.float32)


#: solids in object units (half-size 1), axis along +z from the rod tip at the origin, in README order; the
#: sphere (unit radius, centre (0, 0, 1)) has no planes and its bounding box's corners as vertices
_SOLIDS = (
    _polygon_solid(12, 1.0, 2.0, pyramid=True, phase=np.pi / 12),  # cone
    _polygon_solid(4, 0.8, 1.6, pyramid=False, phase=0.0),  # cube
    _polygon_solid(12, 0.85, 1.7, pyramid=False, phase=np.pi / 12),  # cylinder
    _polygon_solid(6, 0.87, 1.3, pyramid=False, phase=0.0),  # hexagonal prism
    _polygon_solid(4, 0.9, 1.9, pyramid=True, phase=0.0),  # square pyramid
    (None, np.array([[a, b, z] for a in (-1, 1) for b in (-1, 1) for z in (0, 2)], np.float32)),  # sphere
)


def _dot_planes(x: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """``x . normals[j]`` for every plane: (..., 3) x (m, 3) -> (..., m), written out like :func:`_dot`."""
    return x[..., 0, None] * normals[:, 0] + x[..., 1, None] * normals[:, 1] + x[..., 2, None] * normals[:, 2]


def _convex_hit(o: np.ndarray, d: np.ndarray, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry distance (inf for a miss) of rays into the convex solid ``planes``, and the face they enter by.

    ``o`` (n, 3) one origin per image, ``d`` (n, r, 3) rays; the origins lie outside the solid. One pass per
    plane over contiguous (n, r) arrays (reductions over a short last axis are slow in numpy).
    """
    near = np.full(d.shape[:2], -np.inf, dtype=np.float32)
    far = np.full(d.shape[:2], np.inf, dtype=np.float32)
    face = np.zeros(d.shape[:2], dtype=np.int8)
    outside = np.zeros(d.shape[:2], dtype=bool)
    for j, (nx, ny, nz, c) in enumerate(planes):
        gap = (c - (o[:, 0] * nx + o[:, 1] * ny + o[:, 2] * nz))[:, None]  # (n, 1)
        dn = d[..., 0] * nx + d[..., 1] * ny + d[..., 2] * nz
        with np.errstate(divide="ignore", invalid="ignore"):
            t = gap / dn
        later = (dn < -_EPS) & (t > near)
        near = np.where(later, t, near)
        face[later] = j
        far = np.where(dn > _EPS, np.minimum(far, t), far)
        outside |= (np.abs(dn) <= _EPS) & (gap < 0)
    return np.where((near <= far) & (near > 0) & ~outside, near, np.inf), face


def _sphere_hit(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each ray meets the unit sphere centred at ``(0, 0, 1)``, and its unit normal there."""
    oc = (o - np.array([0.0, 0.0, 1.0], dtype=np.float32))[:, None, :]
    b = _dot(d, oc)
    disc = b * b - (_dot(oc, oc) - 1.0)
    hit = disc >= 0
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return hit & (t > 0), oc + t[..., None] * d


# -- cameras and the static scene --------------------------------------------------------------------------------
def _camera(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Origin (3,) and basis rows (right, up, forward) (3, 3) of camera height class ``k``."""
    origin = np.array([0.0, CAMERA_HEIGHTS[k], -CAMERA_DISTANCE])
    forward = np.array([0.0, TARGET_Y, 0.0]) - origin
    forward /= np.linalg.norm(forward)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    return origin, np.stack([right, np.cross(forward, right), forward])


def _rays(k: int, samples: int) -> np.ndarray:
    """Unit ray directions (RES * samples, RES * samples, 3) of camera ``k`` on a sub-pixel grid."""
    _, (right, up, forward) = _camera(k)
    pos = (np.arange(RES * samples) + 0.5) / samples - RES / 2  # pixel-plane coordinates of sub-pixel centres
    d = forward * FOCAL + pos[None, :, None] * right - pos[:, None, None] * up
    return (d / np.linalg.norm(d, axis=-1, keepdims=True)).astype(np.float32)


def _project(points: np.ndarray, k: np.ndarray, scene: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-plane x, y (pixel units, origin top-left) and depth of world points (n, 3) seen by cameras ``k``."""
    v = points - scene["origin"][k]
    basis = scene["basis"][k]
    depth = _dot(v, basis[:, 2])
    return RES / 2 + FOCAL * _dot(v, basis[:, 0]) / depth, RES / 2 - FOCAL * _dot(v, basis[:, 1]) / depth, depth


#: the robot's fixed parts, 16-sided prisms on the vertical axis: (sides, apothem, y0, y1, grey) of the base
#: flange, the column and the joint housing
_ROBOT = ((16, 0.3, 0.0, 0.06, 160.0), (16, 0.15, 0.0, 0.85, 88.0), (16, 0.19, 0.8, 1.1, 160.0))


def _lambert(normal_dot_light: np.ndarray) -> np.ndarray:
    return AMBIENT + (1.0 - AMBIENT) * np.maximum(normal_dot_light, 0.0)


def _static_layers(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring coverage (RES, RES), robot coverage (RES, RES) and robot grey (RES, RES) of camera ``k``."""
    s = SCENE_SUPERSAMPLE
    origin, _ = _camera(k)
    d = _rays(k, s).reshape(1, -1, 3)
    nearest = np.full(d.shape[1], np.inf, dtype=np.float32)
    grey = np.zeros(d.shape[1], dtype=np.float32)
    for sides, apothem, y0, y1, value in _ROBOT:
        planes = _polygon_solid(sides, apothem, y1 - y0, pyramid=False, phase=np.pi / sides)[0][:, [0, 2, 1, 3]]
        planes[:, 3] += planes[:, 1] * y0  # local z -> world y, lifted to y0
        t, face = _convex_hit(origin[None].astype(np.float32), d, planes)
        closer = t[0] < nearest
        nearest = np.where(closer, t[0], nearest)
        grey = np.where(closer, value * _lambert(planes[face[0], :3] @ LIGHT), grey)
    robot = np.isfinite(nearest)
    t = -origin[1] / d[0, :, 1]
    r = np.hypot(origin[0] + t * d[0, :, 0], origin[2] + t * d[0, :, 2])
    ring = (t > 0) & (r >= RING_INNER) & (r <= RING_OUTER) & ~robot

    def pool(a):
        return a.reshape(RES, s, RES, s).mean(axis=(1, 3)).astype(np.float32)

    return pool(ring.astype(np.float32)), pool(robot.astype(np.float32)), pool(grey)


@functools.lru_cache(maxsize=1)
def _scene() -> dict:
    """Everything that does not depend on the image: backgrounds per (camera, ring colour), robot masks, rays."""
    layers = [_static_layers(k) for k in range(3)]
    floor, rings = np.asarray(FLOOR_RGB, np.float32), np.asarray(RING_RGB, np.float32)
    backgrounds = np.empty((3, 3, RES, RES, 3), dtype=np.float32)
    for k, (ring, robot, grey) in enumerate(layers):
        for b in range(3):
            backgrounds[k, b] = (
                floor * (1.0 - ring - robot)[..., None] + rings[b] * ring[..., None] + grey[..., None]
            )
    cams = [_camera(k) for k in range(3)]
    return {
        "backgrounds": backgrounds,
        "robot": np.stack([layer[1] for layer in layers]),
        "rays": np.stack([_rays(k, SUPERSAMPLE) for k in range(3)]),
        "origin": np.stack([c[0] for c in cams]).astype(np.float32),
        "basis": np.stack([c[1] for c in cams]).astype(np.float32),
    }


# -- per image: arm pose, rod, object --------------------------------------------------------------------------
def _arm(classes: np.ndarray) -> dict:
    """Rod direction, object frame (rows u, v, w), joint, rod tip and object centre for factor classes (n, 7)."""
    tilt = np.deg2rad(TILT_DEG[classes[:, 5]])
    azimuth = np.deg2rad(AZIMUTH_DEG[classes[:, 6]])
    w = np.stack([np.sin(tilt) * np.sin(azimuth), np.cos(tilt), np.sin(tilt) * np.cos(azimuth)], axis=1)
    u = np.stack([np.cos(azimuth), np.zeros_like(azimuth), -np.sin(azimuth)], axis=1)
    frame = np.stack([u, np.cross(w, u), w], axis=1).astype(np.float32)
    joint = np.array([0.0, JOINT_Y, 0.0], dtype=np.float32)
    tip = (joint + ROD_LENGTH * w).astype(np.float32)
    size = np.asarray(OBJECT_HALF_SIZE, np.float32)[classes[:, 2]]
    return {"frame": frame, "joint": np.broadcast_to(joint, tip.shape), "tip": tip,
            "centre": tip + size[:, None] * frame[:, 2], "size": size}


def _windows(lo: np.ndarray, hi: np.ndarray, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pixel-plane boxes ``lo``, ``hi`` (n, 2) as (x, y): the smallest of ``sizes`` holding every pixel the box
    touches (its index), and that window's top and left corner, centred on the box and kept inside the image."""
    first, last = np.floor(lo).astype(np.int64), np.floor(hi).astype(np.int64)
    needed = (last - first + 1).max(axis=1)
    which = np.minimum(np.searchsorted(np.asarray(sizes), needed), len(sizes) - 1)
    size = np.asarray(sizes)[which]
    corner = np.clip(first - (size[:, None] - (last - first + 1)) // 2, 0, (RES - size)[:, None])
    return which, corner[:, 1], corner[:, 0]


def _window_index(top: np.ndarray, left: np.ndarray, size: int, scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Row (n, size * scale, 1) and column (n, 1, size * scale) indices of windows on a grid ``scale`` x finer."""
    steps = np.arange(size * scale)
    return (scale * top[:, None] + steps)[:, :, None], (scale * left[:, None] + steps)[:, None, :]


def _paste(img: np.ndarray, top: np.ndarray, left: np.ndarray, alpha: np.ndarray, rgb: np.ndarray) -> None:
    """Blend window layers ``alpha`` (n, W, W) of colour ``rgb`` (n, W, W, 3) into ``img`` at (top, left)."""
    rows, cols = _window_index(top, left, alpha.shape[1])
    n = np.arange(len(img))[:, None, None]
    img[n, rows, cols] = img[n, rows, cols] * (1.0 - alpha[..., None]) + rgb


def _occlusion(k, top, left, size, behind, scene) -> np.ndarray:
    """Visible fraction (n, W, W) of a layer: the robot's column hides what lies behind the arm's axis."""
    rows, cols = _window_index(top, left, size)
    return 1.0 - scene["robot"][k[:, None, None], rows, cols] * behind[:, None, None]


def _pixel_box(points: list[np.ndarray], k: np.ndarray, scene: dict, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-plane box (lo, hi), each (n, 2) as (x, y), of world points (each (n, 3)) widened by ``margin``."""
    xy = np.stack([np.stack(_project(p, k, scene)[:2], axis=1) for p in points])
    return xy.min(axis=0) - margin, xy.max(axis=0) + margin


def _draw_rod(img, k, arm, scene) -> None:
    """Blend the rod, an anti-aliased segment from the joint to the tip, into ``img``."""
    jx, jy, jz = _project(arm["joint"], k, scene)
    tx, ty, tz = _project(arm["tip"], k, scene)
    _, top, left = _windows(*_pixel_box([arm["joint"], arm["tip"]], k, scene, ROD_HALF_WIDTH_PX + 1.0), (ROD_WINDOW,))
    rows, cols = _window_index(top, left, ROD_WINDOW)
    px, py = cols + 0.5, rows + 0.5
    ex, ey = (tx - jx)[:, None, None], (ty - jy)[:, None, None]
    rx, ry = px - jx[:, None, None], py - jy[:, None, None]
    along = np.clip((rx * ex + ry * ey) / np.maximum(ex * ex + ey * ey, _EPS), 0.0, 1.0)
    dist = np.hypot(rx - along * ex, ry - along * ey)
    alpha = np.clip(ROD_HALF_WIDTH_PX + 0.5 - dist, 0.0, 1.0).astype(np.float32)
    alpha *= _occlusion(k, top, left, ROD_WINDOW, tz > jz, scene)
    _paste(img, top, left, alpha, alpha[..., None] * np.asarray(ROD_RGB, np.float32))


def _object_box(classes: np.ndarray, k: np.ndarray, arm: dict, scene: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-plane box of each object's vertices (a convex solid's image is the hull of theirs)."""
    lo, hi = np.zeros((len(k), 2)), np.zeros((len(k), 2))
    for shape, (_, vertices) in enumerate(_SOLIDS):
        sel = np.flatnonzero(classes[:, 1] == shape)
        frame, scale = arm["frame"][sel], arm["size"][sel, None]
        points = [arm["tip"][sel] + scale * (x * frame[:, 0] + y * frame[:, 1] + z * frame[:, 2]) for x, y, z in vertices]
        lo[sel], hi[sel] = _pixel_box(points, k[sel], scene, 0.0)
    return lo, hi


def _draw_object(img, classes, k, arm, scene, top, left, window: int) -> None:
    """Ray-cast the objects in ``window`` pixel squares at (top, left) and blend them into ``img``."""
    n_sub = window * SUPERSAMPLE
    rows, cols = _window_index(top, left, window, SUPERSAMPLE)
    d = scene["rays"][k[:, None, None], rows, cols].reshape(len(k), -1, 3)
    frame = arm["frame"]
    # rays in object units: p_local = frame (p - tip) / size
    d_local = np.stack([_dot(d, frame[:, None, j]) for j in range(3)], axis=-1)
    rel = scene["origin"][k] - arm["tip"]
    o_local = np.stack([_dot(rel, frame[:, j]) for j in range(3)], axis=-1) / arm["size"][:, None]
    light = np.stack([_dot(frame[:, j], LIGHT.astype(np.float32)) for j in range(3)], axis=-1)
    hit = np.zeros(d_local.shape[:2], dtype=np.float32)
    shade = np.zeros(d_local.shape[:2], dtype=np.float32)
    for shape, (planes, _) in enumerate(_SOLIDS):
        sel = np.flatnonzero(classes[:, 1] == shape)
        if not sel.size:
            continue
        if planes is None:
            h, normal = _sphere_hit(o_local[sel], d_local[sel])
            lit = _dot(normal, light[sel, None, :])
        else:
            t, face = _convex_hit(o_local[sel], d_local[sel], planes)
            h = np.isfinite(t)
            lit = np.take_along_axis(_dot_planes(light[sel], planes[:, :3]), face.astype(np.intp), axis=1)
        hit[sel], shade[sel] = h, np.where(h, _lambert(lit), 0.0)
    behind = _project(arm["centre"], k, scene)[2] > _project(arm["joint"], k, scene)[2]
    visible = _occlusion(k, top, left, window, behind, scene)
    colour = np.asarray(OBJECT_RGB, np.float32)[classes[:, 0]][:, None, None, :]
    alpha = _pool(hit.reshape(-1, n_sub, n_sub)) * visible
    rgb = (_pool(shade.reshape(-1, n_sub, n_sub)) * visible)[..., None] * colour
    _paste(img, top, left, alpha, rgb)


def _pool(a: np.ndarray) -> np.ndarray:
    """Mean of 2x2 sub-pixel blocks, summed in a fixed order."""
    return (a[:, 0::2, 0::2] + a[:, 0::2, 1::2] + a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) * np.float32(0.25)


def render_mpi3d(classes: np.ndarray, space: FactorSpace | None = None) -> np.ndarray:
    """Render factor classes (n, 7) of the MPI3D grid as uint8 RGB images (n, 64, 64, 3)."""
    space = space or mpi3d_space()
    classes = space.check_classes(classes)
    out = np.empty((len(classes), RES, RES, 3), dtype=np.uint8)
    scene = _scene()
    for start in range(0, len(classes), _CHUNK):
        c = classes[start : start + _CHUNK]
        k = c[:, 3]
        img = scene["backgrounds"][k, c[:, 4]]
        arm = _arm(c)
        _draw_rod(img, k, arm, scene)
        which, top, left = _windows(*_object_box(c, k, arm, scene), OBJECT_WINDOWS)
        for b, window in enumerate(OBJECT_WINDOWS):  # images grouped by the window their object needs
            sel = np.flatnonzero(which == b)
            if sel.size:
                part = img[sel]
                sub = {key: value[sel] for key, value in arm.items()}
                _draw_object(part, c[sel], k[sel], sub, scene, top[sel], left[sel], window)
                img[sel] = part
        np.clip(img + 0.5, 0.0, 255.0, out=img)
        out[start : start + _CHUNK] = img.astype(np.uint8)
    return out


class ProceduralMPI3D(ProceduralDataset):
    """The MPI3D factor grid drawn like ``mpi3d_toy`` on demand; never a stand-in for the official files."""

    name = "mpi3d-procedural"
    version = "1"
    channels = 3

    def __init__(self, *, cache: bool = False, cache_dir: str | Path | None = None) -> None:
        super().__init__(mpi3d_space(), cache=cache, cache_dir=cache_dir)

    def render_classes(self, classes: np.ndarray) -> np.ndarray:
        return render_mpi3d(classes, self._space)
