"""Dataset manifests (``data_manifests/<name>.toml``): files, URLs, sizes, checksums, format, factors.

A manifest names every file a dataset needs::

    [[files]]
    name = "3dshapes.h5"
    urls = ["https://storage.googleapis.com/3d-shapes/3dshapes.h5"]
    size = 267573662                      # bytes; 0 = not published (then only the checksum is checked)
    checksum = "sha256:0a0f6ed9..."       # "md5:..." or "sha256:..."; "" = not published (see ``note``)

and the arrays inside it under ``[format]``. Tests build manifests with their own fixture checksums via
:func:`dataclasses.replace`; production code always reads the files shipped in ``data_manifests/``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CHECKSUM_ALGOS = ("md5", "sha256")


def manifest_dir() -> Path:
    """``$DISENTBENCH_MANIFESTS`` or the repository's ``data_manifests/``."""
    env = os.environ.get("DISENTBENCH_MANIFESTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data_manifests"


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset as published."""

    name: str
    urls: tuple[str, ...]
    size: int = 0
    checksum: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"manifest file name must be a plain file name, got {self.name!r}")
        if self.checksum:
            algo, _, digest = self.checksum.partition(":")
            if algo not in _CHECKSUM_ALGOS or not digest or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"checksum of {self.name} must be 'md5:<hex>' or 'sha256:<hex>', got {self.checksum!r}")
        if self.size < 0:
            raise ValueError(f"size of {self.name} must be >= 0, got {self.size}")

    @property
    def algo(self) -> str:
        return self.checksum.partition(":")[0]

    @property
    def digest(self) -> str:
        return self.checksum.partition(":")[2]

    def describe(self) -> str:
        """``name (1,234 bytes, sha256 abc...)`` for error messages."""
        size = f"{self.size:,} bytes" if self.size else "size not published"
        check = f"{self.algo} {self.digest}" if self.checksum else "checksum not published"
        return f"{self.name} ({size}, {check})"


@dataclass(frozen=True)
class Manifest:
    """Everything needed to fetch, verify and read one official dataset."""

    name: str
    version: str
    description: str
    files: tuple[FileSpec, ...]
    format: dict[str, Any] = field(default_factory=dict)
    factors: tuple[dict[str, Any], ...] = ()
    homepage: str = ""
    citation: str = ""
    license: str = ""
    note: str = ""

    def file(self, name: str) -> FileSpec:
        for spec in self.files:
            if spec.name == name:
                return spec
        raise KeyError(f"manifest {self.name!r} has no file {name!r}")

    @property
    def download_bytes(self) -> int:
        return sum(f.size for f in self.files)


def parse_manifest(data: dict[str, Any]) -> Manifest:
    """Build a :class:`Manifest` from parsed TOML, with a clear error for missing keys."""
    try:
        files = tuple(
            FileSpec(
                name=f["name"],
                urls=tuple(f.get("urls", ())),
                size=int(f.get("size", 0)),
                checksum=str(f.get("checksum", "")).lower(),
                note=str(f.get("note", "")),
            )
            for f in data["files"]
        )
        return Manifest(
            name=data["name"],
            version=str(data["version"]),
            description=data.get("description", ""),
            files=files,
            format=dict(data.get("format", {})),
            factors=tuple(data.get("factors", ())),
            homepage=data.get("homepage", ""),
            citation=data.get("citation", ""),
            license=data.get("license", ""),
            note=data.get("note", ""),
        )
    except KeyError as exc:
        raise ValueError(f"manifest {data.get('name', '?')!r} lacks key {exc.args[0]!r}") from None


def load_manifest(name: str, directory: str | Path | None = None) -> Manifest:
    """Read ``<directory>/<name>.toml`` (default :func:`manifest_dir`)."""
    path = Path(directory or manifest_dir()) / f"{name}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest for dataset {name!r} at {path}")
    with open(path, "rb") as fh:
        manifest = parse_manifest(tomllib.load(fh))
    if manifest.name != name:
        raise ValueError(f"manifest {path} names dataset {manifest.name!r}, expected {name!r}")
    return manifest
