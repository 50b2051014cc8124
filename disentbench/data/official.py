"""Official datasets: fetch their files, convert once to memory-mappable arrays, read random access.

Each dataset has a manifest (``data_manifests/<name>.toml``) and a *preparer* that turns the verified
official file(s) into one uint8 array in grid (row-major factor) order:

* dSprites (npz or hdf5): ``imgs`` (737280, 64, 64) in {0, 1}, stored bit-packed (737280, 64, 8).
* Shapes3D (h5): ``images`` (480000, 64, 64, 3) copied to a raw ``.npy``.
* MPI3D (npz): ``images`` (1036800, 64, 64, 3) memory-mapped inside the npz when stored uncompressed,
  otherwise streamed once into a raw ``.npy``.
* smallNORB and Cars3D: see :mod:`disentbench.data.smallnorb` and :mod:`disentbench.data.cars3d`.

When a manifest lists ``alternatives = true`` its files are alternative sources in order of
preference: whichever is already in the cache is used, else the first is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from disentbench.data.base import GroundTruthDataset
from disentbench.data.cache import DataError, DatasetUnavailable, dataset_dir, is_offline
from disentbench.data.convert import converted_source, open_converted
from disentbench.data.download import ensure_verified, fetch_file, placement_hint, verify_file
from disentbench.data.manifest import FileSpec, Manifest, load_manifest
from disentbench.factors import FactorSpace


class ArrayDataset(GroundTruthDataset):
    """Images held in a (memory-mapped) array in grid order; ``packed`` arrays hold np.packbits rows."""

    def __init__(
        self,
        name: str,
        version: str,
        space: FactorSpace,
        array: np.ndarray,
        channels: int,
        packed: bool = False,
        rows: np.ndarray | None = None,
    ):
        n = space.n_points if rows is None else len(array)
        expected = (n, 64, 8) if packed else (n, 64, 64) + ((channels,) if channels > 1 else ())
        if tuple(array.shape) not in (expected, expected + (1,)) or array.dtype != np.uint8:
            raise DataError(f"{name}: image array has {array.shape} {array.dtype}, expected {expected} uint8")
        if rows is not None and (rows.shape != (space.n_points,) or rows.min() < 0 or rows.max() >= n):
            raise DataError(f"{name}: row map must give one array row per grid point")
        self.name, self.version, self.channels = name, version, channels
        self.pixel_max = 1 if packed else 255  # bit-packed arrays hold the binary dSprites images
        self._space, self._array, self._packed, self._rows = space, array, packed, rows

    @property
    def factor_space(self) -> FactorSpace:
        return self._space

    def _read(self, indices: np.ndarray) -> np.ndarray:
        if self._rows is not None:
            indices = self._rows[indices]
        rows = np.asarray(self._array[indices])  # one copy out of the memory map, in request order
        if self._packed:
            rows = np.unpackbits(rows, axis=-1)
        return rows.reshape(len(indices), 64, 64, self.channels)


@dataclass(frozen=True)
class Prepared:
    """A preparer's result: the image array and whether its rows are bit-packed."""

    array: np.ndarray
    packed: bool = False
    rows: np.ndarray | None = None  # array row of each grid point when the array holds more images


@dataclass(frozen=True)
class OfficialEntry:
    """How to open one official dataset.

    ``preparer`` names ``"module:function"`` with signature ``(manifest, dataset_dir, space, progress) ->
    Prepared``; ``output`` is the converted file it writes in the dataset directory.
    """

    space: Callable[[], FactorSpace]
    channels: int
    preparer: str
    output: str


def _entries() -> dict[str, OfficialEntry]:
    from disentbench.data import spaces

    prep = "disentbench.data.prepare"
    return {
        "dsprites": OfficialEntry(spaces.dsprites_space, 1, f"{prep}:prepare_dsprites", "dsprites_packed.npy"),
        "shapes3d": OfficialEntry(spaces.shapes3d_space, 3, f"{prep}:prepare_shapes3d", "shapes3d_images.npy"),
        "mpi3d_toy": OfficialEntry(spaces.mpi3d_space, 3, f"{prep}:prepare_mpi3d", "mpi3d_toy_images.npy"),
        "mpi3d_realistic": OfficialEntry(spaces.mpi3d_space, 3, f"{prep}:prepare_mpi3d", "mpi3d_realistic_images.npy"),
        "mpi3d_real": OfficialEntry(spaces.mpi3d_space, 3, f"{prep}:prepare_mpi3d", "mpi3d_real_images.npy"),
        "smallnorb": OfficialEntry(spaces.smallnorb_space, 1, "disentbench.data.smallnorb:prepare", "smallnorb_64.npy"),
        "cars3d": OfficialEntry(spaces.cars3d_space, 3, "disentbench.data.cars3d:prepare", "cars3d_64.npy"),
    }


OFFICIAL_NAMES = ("dsprites", "shapes3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "smallnorb", "cars3d")


def official_entry(name: str) -> OfficialEntry:
    try:
        return _entries()[name]
    except KeyError:
        raise KeyError(f"{name!r} is not an official dataset; official datasets: {', '.join(OFFICIAL_NAMES)}") from None


def source_id(spec: FileSpec) -> str:
    """What a conversion records as its source: the checksum, else name and size."""
    return spec.checksum or f"{spec.name}:{spec.size}"


def _sources(manifest: Manifest) -> set[str]:
    """Source ids a conversion may record: any one file, or all files joined by '+' (smallNORB)."""
    ids = [source_id(s) for s in manifest.files]
    return set(ids) | {"+".join(ids)}


def needed_files(manifest: Manifest, directory: Path) -> tuple[FileSpec, ...]:
    """The files to use: all of them, or for ``alternatives`` the first present (else the first listed)."""
    if not manifest.format.get("alternatives", False):
        return manifest.files
    for spec in manifest.files:
        if (directory / spec.name).is_file():
            return (spec,)
    return manifest.files[:1]


def ensure_files(
    manifest: Manifest, directory: Path, *, download: bool, offline: bool | None, progress: bool
) -> dict[str, Path]:
    """Paths of the needed, verified files; downloads missing ones when ``download`` (and not offline)."""
    paths = {}
    for spec in needed_files(manifest, directory):
        path = directory / spec.name
        if not path.is_file():
            if not download or is_offline(offline):
                how = "offline" if download else f"not downloaded (run `disentbench data fetch {manifest.name}`)"
                raise DatasetUnavailable(f"dataset {manifest.name!r} is {how}: {placement_hint(spec, directory)}")
            path = fetch_file(spec, directory, offline=offline, progress=progress)
        ensure_verified(path, spec)  # files placed by hand are checked too, once
        paths[spec.name] = path
    return paths


def _resolve(target: str) -> Callable:
    import importlib

    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def open_official(
    name: str,
    *,
    cache_dir: str | Path | None = None,
    manifest: Manifest | None = None,
    download: bool = False,
    offline: bool | None = None,
    progress: bool = True,
) -> ArrayDataset:
    """Open an official dataset, converting its verified files on first use.

    ``manifest`` overrides the shipped manifest (tests use fixture checksums); ``download=True`` fetches
    missing files (``disentbench data fetch`` does this).
    """
    entry = official_entry(name)
    manifest = manifest or load_manifest(name)
    directory = dataset_dir(name, cache_dir)
    converted = entry.output and open_converted(directory / entry.output, _sources(manifest)) is not None
    if not converted:
        ensure_files(manifest, directory, download=download, offline=offline, progress=progress)
    space = entry.space()
    prepared = _resolve(entry.preparer)(manifest, directory, space, progress)
    return ArrayDataset(name, manifest.version, space, prepared.array, entry.channels, prepared.packed, prepared.rows)


def is_available(name: str, *, cache_dir: str | Path | None = None) -> bool:
    """Whether the needed files (or their finished conversion) are in the cache."""
    entry = official_entry(name)
    directory = dataset_dir(name, cache_dir)
    manifest = load_manifest(name)
    if entry.output and converted_source(directory / entry.output) is not None:
        return True
    return all((directory / s.name).is_file() for s in needed_files(manifest, directory))


def download_bytes(name: str) -> int:
    manifest = load_manifest(name)
    if manifest.format.get("alternatives", False):
        return manifest.files[0].size
    return manifest.download_bytes


def verify_official(
    name: str, *, cache_dir: str | Path | None = None, manifest: Manifest | None = None
) -> list[str]:
    """Re-check every present file against the manifest and the conversion against its source.

    Returns one line per check; raises :class:`~disentbench.data.cache.ChecksumError` on a mismatch and
    :class:`DatasetUnavailable` when nothing is there to verify.
    """
    entry = official_entry(name)
    manifest = manifest or load_manifest(name)
    directory = dataset_dir(name, cache_dir)
    lines = []
    for spec in manifest.files:
        path = directory / spec.name
        if path.is_file():
            verify_file(path, spec)
            lines.append(f"ok  {spec.describe()}")
    if not lines:
        spec = needed_files(manifest, directory)[0]
        raise DatasetUnavailable(f"nothing to verify for {name!r}: {placement_hint(spec, directory)}")
    if entry.output:
        out = directory / entry.output
        recorded = converted_source(out)
        if recorded is not None:
            if recorded not in _sources(manifest):
                raise DataError(f"{out} was converted from {recorded}, which matches no file of the manifest; delete it")
            lines.append(f"ok  {out.name} (converted from {recorded})")
    return lines


open_dsprites = partial(open_official, "dsprites")
open_shapes3d = partial(open_official, "shapes3d")
open_mpi3d_toy = partial(open_official, "mpi3d_toy")
open_mpi3d_realistic = partial(open_official, "mpi3d_realistic")
open_mpi3d_real = partial(open_official, "mpi3d_real")
open_smallnorb = partial(open_official, "smallnorb")
open_cars3d = partial(open_official, "cars3d")
