"""Cars3D (Reed, Zhang, Zhang, Lee 2015) with the factors of disentanglement_lib: elevation 4, azimuth 24, object 183.

``nips2015-analogy-data.tar.gz`` holds ``data/cars/car_*_mesh.mat`` (MATLAB files with ``im``: uint8
(128, 128, 3, 24, 4), i.e. (..., azimuth, elevation)) and ``data/cars/list.txt`` (the car order; without
it the files are sorted by name). Images are resized to 64x64 with Pillow's Lanczos filter
(disentanglement_lib: ``thumbnail`` with ``ANTIALIAS``, the same filter) and stored in grid order
``index = ravel_multi_index((elevation, azimuth, object), (4, 24, 183))``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from disentbench.data.cache import DataError
from disentbench.data.convert import array_blocks, convert_rows, open_converted
from disentbench.data.manifest import Manifest
from disentbench.data.official import Prepared, source_id
from disentbench.factors import FactorSpace


def _car_images(mat_bytes: bytes, name: str, n_elev: int, n_azim: int) -> np.ndarray:
    """(elevation, azimuth, 64, 64, 3) uint8 from one car's .mat file."""
    from PIL import Image
    from scipy.io import loadmat

    try:
        im = loadmat(io.BytesIO(mat_bytes))["im"]
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{name}: not a Cars3D mesh file with key 'im' ({exc})") from exc
    if im.shape != (128, 128, 3, n_azim, n_elev) or im.dtype != np.uint8:
        raise DataError(f"{name}: 'im' has {im.shape} {im.dtype}, expected (128, 128, 3, {n_azim}, {n_elev}) uint8")
    out = np.empty((n_elev, n_azim, 64, 64, 3), dtype=np.uint8)
    for e in range(n_elev):
        for a in range(n_azim):
            out[e, a] = np.asarray(Image.fromarray(np.ascontiguousarray(im[:, :, :, a, e])).resize((64, 64), Image.LANCZOS))
    return out


def prepare(manifest: Manifest, directory: Path, space: FactorSpace, progress: bool) -> Prepared:
    """Read every car from the archive once and store the resized grid as ``cars3d_64.npy``."""
    spec = manifest.files[0]
    out = directory / "cars3d_64.npy"
    if open_converted(out, {source_id(spec)}) is None:
        n_elev, n_azim, n_obj = space.sizes
        cars: dict[str, np.ndarray] = {}
        order: list[str] = []
        try:
            with tarfile.open(directory / spec.name, "r:*") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if not member.isfile() or "/cars/" not in f"/{member.name}":
                        continue
                    data = tar.extractfile(member).read()
                    if base == "list.txt":
                        order = [line.strip() for line in data.decode().splitlines() if line.strip()]
                    elif base.endswith(".mat"):
                        cars[base[:-4]] = _car_images(data, member.name, n_elev, n_azim)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{spec.name}: cannot read the archive ({exc})") from exc
        names = order or sorted(cars)
        if len(names) != n_obj or set(names) != set(cars):
            raise DataError(f"{spec.name}: found {len(cars)} cars (list.txt names {len(order)}), expected {n_obj}")
        grid = np.stack([cars[n] for n in names], axis=2).reshape(space.n_points, 64, 64, 3)
        convert_rows(out, grid.shape, np.uint8, source_id(spec), array_blocks(grid, 4096), progress=progress,
                     desc="cars3d")
    return Prepared(np.load(out, mmap_mode="r"))
