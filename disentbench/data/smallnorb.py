"""smallNORB (LeCun, Huang, Bottou 2004) with the factors of disentanglement_lib (Locatello et al. 2019).

The six ``*.mat.gz`` files (train and test: ``dat`` images, ``cat`` categories, ``info``) use NORB's
binary matrix format: int32 magic (0x1E3D4C55 uint8, 0x1E3D4C54 int32), int32 ndim, ``max(3, ndim)``
int32 dimensions, then little-endian data. ``dat`` is (24300, 2, 96, 96) (a stereo pair: the first
image is used, as in disentanglement_lib), ``info`` is (24300, 4): instance, elevation 0..8, azimuth
0, 2, ..., 34, lighting 0..5.

All 48,600 first-camera images are resized to 64x64 with Pillow's Lanczos filter (disentanglement_lib
uses ``PIL.Image.ANTIALIAS``, the same filter) and stored in the order (category, instance, elevation,
azimuth, lighting). The factor grid is category 5, elevation 9, azimuth 18, lighting 6; like
disentanglement_lib we leave the instance out of the factors. disentanglement_lib draws the instance
anew at every read; to keep renders a pure function of the index we draw it once per grid point with
``np.random.default_rng(0)``.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

import numpy as np

from disentbench.data.cache import DataError
from disentbench.data.convert import convert_rows, open_converted
from disentbench.data.manifest import Manifest
from disentbench.data.official import Prepared, source_id
from disentbench.factors import FactorSpace

_DTYPES = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32, 0x1E3D4C56: np.int16, 0x1E3D4C51: np.float32,
           0x1E3D4C53: np.float64}
INSTANCE_SEED = 0


def read_norb_matrix(data: bytes, name: str = "matrix") -> np.ndarray:
    """Parse one NORB binary matrix."""
    if len(data) < 20:
        raise DataError(f"{name}: too short for a NORB binary matrix header")
    magic, ndim = np.frombuffer(data, "<i4", 2)
    if int(magic) & 0xFFFFFFFF not in _DTYPES or not 0 < ndim < 8:
        raise DataError(f"{name}: not a NORB binary matrix (magic {int(magic) & 0xFFFFFFFF:#x}, ndim {ndim})")
    stored = max(3, int(ndim))
    dims = tuple(int(d) for d in np.frombuffer(data, "<i4", stored, 8)[:ndim])
    dtype = np.dtype(_DTYPES[int(magic) & 0xFFFFFFFF]).newbyteorder("<")
    offset = 8 + 4 * stored
    count = int(np.prod(dims))
    if len(data) - offset < count * dtype.itemsize:
        raise DataError(f"{name}: truncated, expected {dims} {dtype}")
    return np.frombuffer(data, dtype, count, offset).reshape(dims)


def _read_gz(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as fh:
            return read_norb_matrix(fh.read(), path.name)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot decompress ({exc})") from exc


def _resize(images: np.ndarray) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(images), 64, 64), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((64, 64), Image.LANCZOS))
    return out


def prepare(manifest: Manifest, directory: Path, space: FactorSpace, progress: bool) -> Prepared:
    """Read both splits, check they tile the grid exactly once, resize and store them in grid order."""
    out = directory / "smallnorb_64.npy"
    sources = "+".join(source_id(s) for s in manifest.files)
    triples = _split_files(manifest)
    n_cat, n_elev, n_azim, n_light = space.sizes
    if open_converted(out, {sources}) is None:
        images, factors = [], []
        for dat, cat, info in triples:
            d, c, i = (_read_gz(directory / f) for f in (dat, cat, info))
            if d.ndim != 4 or d.shape[1:] != (2, 96, 96) or c.shape != (len(d),) or i.shape != (len(d), 4):
                raise DataError(f"{dat}: unexpected shapes {d.shape}, {c.shape}, {i.shape}")
            images.append(np.array(d[:, 0]))  # a copy, so the stereo pair buffer can be freed
            factors.append(np.column_stack([c, i[:, 0], i[:, 1], i[:, 2] // 2, i[:, 3]]))
            del d
        factors = np.concatenate(factors).astype(np.int64)
        n_inst = int(factors[:, 1].max()) + 1
        full = (n_cat, n_inst, n_elev, n_azim, n_light)
        if (factors < 0).any() or (factors >= np.asarray(full)).any():
            raise DataError("smallNORB labels fall outside the factor grid")
        rows = np.ravel_multi_index(tuple(factors.T), full)
        if len(rows) != int(np.prod(full)) or len(np.unique(rows)) != len(rows):
            raise DataError(f"smallNORB files do not cover the grid {full} exactly once")
        ordered = np.empty((len(rows), 96, 96), dtype=np.uint8)
        ordered[rows] = np.concatenate(images)

        def blocks(start: int) -> Iterator[np.ndarray]:
            for s in range(start, len(ordered), 2048):
                yield _resize(ordered[s : s + 2048])

        convert_rows(out, (len(rows), 64, 64), np.uint8, sources, blocks, progress=progress, desc="smallnorb")
    array = np.load(out, mmap_mode="r")
    n_inst = len(array) // space.n_points
    instance = np.random.default_rng(INSTANCE_SEED).integers(0, n_inst, space.n_points)
    classes = space.all_classes()
    full = (n_cat, n_inst, n_elev, n_azim, n_light)
    rows = np.ravel_multi_index((classes[:, 0], instance, classes[:, 1], classes[:, 2], classes[:, 3]), full)
    return Prepared(array, rows=rows.astype(np.int64))


def _split_files(manifest: Manifest) -> list[tuple[str, str, str]]:
    names = [f.name for f in manifest.files]
    triples = []
    for split in ("training", "testing"):
        picked = tuple(next((n for n in names if f"-{split}-{kind}" in n), "") for kind in ("dat", "cat", "info"))
        if not all(picked):
            raise DataError(f"manifest {manifest.name!r} lacks the {split} dat/cat/info files")
        triples.append(picked)
    return triples
