"""Dataset names -> loaders: ``get_dataset(name)`` and ``list_datasets()``.

Official datasets read verified files from the cache directory (see :mod:`disentbench.data.cache`);
procedural ones render on demand. A name always means one dataset: a procedural look-alike is never
returned for an official name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disentbench.data.base import GroundTruthDataset
from disentbench.factors import FactorSpace


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: ``loader`` is ``"module:callable"`` taking ``cache_dir`` and keywords."""

    name: str
    kind: str  # "official" or "procedural"
    loader: str
    space: str
    channels: int
    description: str

    def factor_space(self) -> FactorSpace:
        return _resolve(self.space)()


def _resolve(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


_ENTRIES: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> DatasetEntry:
    if entry.kind not in ("official", "procedural"):
        raise ValueError(f"dataset kind must be 'official' or 'procedural', got {entry.kind!r}")
    if entry.name in _ENTRIES:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    _ENTRIES[entry.name] = entry
    return entry


def _spaces(name: str) -> str:
    return f"disentbench.data.spaces:{name}"


for _entry in (
    DatasetEntry(
        "dsprites-procedural",
        "procedural",
        "disentbench.data.procedural.dsprites:ProceduralDSprites",
        _spaces("dsprites_space"),
        1,
        "dSprites factor grid rendered on demand (square, ellipse, heart; binary 64x64)",
    ),
    DatasetEntry(
        "shapes3d-procedural",
        "procedural",
        "disentbench.data.procedural.shapes3d:ProceduralShapes3D",
        _spaces("shapes3d_space"),
        3,
        "3dshapes factor grid drawn by a ray-caster (look-alike, not the official renders)",
    ),
    DatasetEntry(
        "mpi3d-procedural",
        "procedural",
        "disentbench.data.procedural.mpi3d:ProceduralMPI3D",
        _spaces("mpi3d_space"),
        3,
        "MPI3D factor grid drawn like mpi3d_toy (robot arm look-alike, not the official renders)",
    ),
    *(
        DatasetEntry(name, "official", f"disentbench.data.official:open_{name}", _spaces(space), channels, text)
        for name, space, channels, text in (
            ("dsprites", "dsprites_space", 1, "dSprites (DeepMind), official npz/hdf5 release"),
            ("shapes3d", "shapes3d_space", 3, "3dshapes (DeepMind), official h5 release"),
            ("mpi3d_toy", "mpi3d_space", 3, "MPI3D toy renders (NeurIPS 2019 challenge)"),
            ("mpi3d_realistic", "mpi3d_space", 3, "MPI3D realistic renders"),
            ("mpi3d_real", "mpi3d_space", 3, "MPI3D real camera images"),
            ("smallnorb", "smallnorb_space", 1, "smallNORB resized to 64x64 (disentanglement_lib factors)"),
            ("cars3d", "cars3d_space", 3, "Cars3D (Reed et al. 2015) resized to 64x64"),
        )
    ),
):
    register(_entry)


def dataset_names(kind: str | None = None) -> list[str]:
    """Registered dataset names, optionally only those of one kind."""
    return [n for n, e in _ENTRIES.items() if kind is None or e.kind == kind]


def get_entry(name: str) -> DatasetEntry:
    try:
        return _ENTRIES[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(_ENTRIES)}") from None


def get_dataset(name: str, *, cache_dir: str | Path | None = None, **kwargs: Any) -> GroundTruthDataset:
    """Open dataset ``name``.

    Official datasets need their files in ``cache_dir`` (default: ``$DISENTBENCH_DATA`` or the user cache
    directory); when they are missing a :class:`FileNotFoundError` names each file, its size and checksum,
    and where to put it. Procedural datasets accept their own keyword options.
    """
    entry = get_entry(name)
    factory = _resolve(entry.loader)
    return factory(cache_dir=cache_dir, **kwargs)


def list_datasets(*, cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per dataset: name, kind, number of images, factors (name: size), download bytes, available."""
    rows = []
    for entry in _ENTRIES.values():
        space = entry.factor_space()
        if entry.kind == "official":
            from disentbench.data.official import download_bytes, is_available

            size, available = download_bytes(entry.name), is_available(entry.name, cache_dir=cache_dir)
        else:
            size, available = 0, True
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "images": space.n_points,
                "channels": entry.channels,
                "factors": dict(zip(space.names, space.sizes)),
                "download_bytes": size,
                "available": available,
                "description": entry.description,
            }
        )
    return rows
