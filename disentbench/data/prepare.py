"""Preparers for dSprites, Shapes3D and MPI3D: check the official layout, convert once (see convert.py).

Each preparer takes ``(manifest, dataset_dir, space, progress)`` and returns the image array in grid
order. Layout checks run before any conversion: keys, shapes, dtypes, and for files that carry labels,
that the labels enumerate the factor grid in row-major order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from disentbench.data.cache import DataError
from disentbench.data.convert import array_blocks, convert_rows, npz_blocks, npz_member_info, open_converted
from disentbench.data.convert import stored_npz_member
from disentbench.data.manifest import Manifest
from disentbench.data.official import Prepared, needed_files, source_id
from disentbench.factors import FactorSpace

ROWS_PER_BLOCK = 4096


def _check_array(path: Path, key: str, shape: tuple, dtype: tuple, expected_shape: tuple) -> None:
    if tuple(shape) != tuple(expected_shape) or np.dtype(dtype) != np.uint8:
        raise DataError(f"{path}: {key!r} has shape {tuple(shape)} {np.dtype(dtype)}, "
                        f"expected {tuple(expected_shape)} uint8 — not the official file?")


def _check_grid_labels(path: Path, labels: np.ndarray, expected: np.ndarray, what: str) -> None:
    if labels.shape != expected.shape or not np.allclose(labels, expected, atol=1e-4):
        raise DataError(f"{path}: {what} do not enumerate the factor grid in row-major order — not the official file?")


def _open_converted(out: Path, manifest: Manifest) -> np.ndarray | None:
    """The finished conversion when it came from any file of the manifest (the source may be gone)."""
    return open_converted(out, {source_id(s) for s in manifest.files})


# -- dSprites -----------------------------------------------------------------------------------------
def prepare_dsprites(manifest: Manifest, directory: Path, space: FactorSpace, progress: bool) -> Prepared:
    """``imgs`` (n, 64, 64) in {0, 1} from the npz or hdf5 release, bit-packed to (n, 64, 8)."""
    spec = needed_files(manifest, directory)[0]
    path, out = directory / spec.name, directory / "dsprites_packed.npy"
    done = _open_converted(out, manifest)
    if done is not None:
        return Prepared(done, packed=True)
    n = space.n_points
    if path.suffix == ".npz":
        shape, dtype = npz_member_info(path, "imgs")
        _check_array(path, "imgs", shape, dtype, (n, 64, 64))
        with np.load(path) as data:
            if "latents_classes" not in data.files:
                raise DataError(f"{path} has no 'latents_classes'; it holds {data.files}")
            classes = data["latents_classes"]
        raw_blocks = npz_blocks(path, "imgs", ROWS_PER_BLOCK)
    else:
        import h5py

        with h5py.File(path, "r") as f:
            if "imgs" not in f or "latents/classes" not in f:
                raise DataError(f"{path} lacks 'imgs' or 'latents/classes'; it holds {sorted(f.keys())}")
            _check_array(path, "imgs", f["imgs"].shape, f["imgs"].dtype, (n, 64, 64))
            classes = f["latents/classes"][()]
        raw_blocks = _h5_blocks(path, "imgs")
    _check_grid_labels(path, classes[:, 1:], space.all_classes(), "latents_classes")

    def packed(start: int) -> Iterator[np.ndarray]:
        for block in raw_blocks(start):
            if block.max(initial=0) > 1:
                raise DataError(f"{path}: dSprites pixels must be 0 or 1")
            yield np.packbits(block, axis=-1)

    convert_rows(out, (n, 64, 8), np.uint8, source_id(spec), packed, progress=progress, desc="dsprites")
    return Prepared(np.load(out, mmap_mode="r"), packed=True)


def _h5_blocks(path: Path, key: str):
    def blocks(start: int) -> Iterator[np.ndarray]:
        import h5py

        with h5py.File(path, "r") as f:
            yield from array_blocks(f[key], ROWS_PER_BLOCK)(start)

    return blocks


# -- Shapes3D -----------------------------------------------------------------------------------------
def prepare_shapes3d(manifest: Manifest, directory: Path, space: FactorSpace, progress: bool) -> Prepared:
    """``images`` (480000, 64, 64, 3) uint8 with ``labels`` (480000, 6) float64 values, copied to a raw npy."""
    import h5py

    spec = needed_files(manifest, directory)[0]
    path, out = directory / spec.name, directory / "shapes3d_images.npy"
    done = _open_converted(out, manifest)
    if done is not None:
        return Prepared(done)
    with h5py.File(path, "r") as f:
        if "images" not in f or "labels" not in f:
            raise DataError(f"{path} lacks 'images' or 'labels'; it holds {sorted(f.keys())}")
        _check_array(path, "images", f["images"].shape, f["images"].dtype, (space.n_points, 64, 64, 3))
        labels = f["labels"][()]
    _check_grid_labels(path, labels, space.classes_to_values(space.all_classes()), "labels")
    convert_rows(out, (space.n_points, 64, 64, 3), np.uint8, source_id(spec), _h5_blocks(path, "images"),
                 progress=progress, desc="shapes3d")
    return Prepared(np.load(out, mmap_mode="r"))


# -- MPI3D --------------------------------------------------------------------------------------------
def prepare_mpi3d(manifest: Manifest, directory: Path, space: FactorSpace, progress: bool) -> Prepared:
    """``images`` (1036800, 64, 64, 3) uint8: mapped in place when stored uncompressed, else streamed to npy."""
    spec = needed_files(manifest, directory)[0]
    path, out = directory / spec.name, directory / f"{manifest.name}_images.npy"
    expected = (space.n_points, 64, 64, 3)
    done = _open_converted(out, manifest)
    if done is not None:
        return Prepared(done)
    shape, dtype = npz_member_info(path, "images")
    _check_array(path, "images", shape, dtype, expected)
    in_place = stored_npz_member(path, "images")
    if in_place is not None:
        return Prepared(in_place)
    convert_rows(out, expected, np.uint8, source_id(spec), npz_blocks(path, "images", ROWS_PER_BLOCK),
                 progress=progress, desc=manifest.name)
    return Prepared(np.load(out, mmap_mode="r"))
