"""Where dataset files live and whether the network may be used.

The cache directory is ``cache_dir`` when given, else the package's data cache
(:func:`disentbench.fileio.cache_dir` ``("data")``: ``$DISENTBENCH_DATA``, else ``$DISENTBENCH_CACHE/data``, else
``<user cache dir>/disentbench/data``); each dataset keeps its files in ``<cache>/<dataset>/``.
``DISENTBENCH_OFFLINE=1`` (or ``--offline`` on the CLI) forbids downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

from disentbench.fileio import cache_dir as package_cache_dir


class DataError(ValueError):
    """A dataset file is missing, corrupt or cannot be written; the message says what to do."""


class ChecksumError(DataError):
    """A file's size or checksum differs from its manifest."""


class DatasetUnavailable(FileNotFoundError):
    """A needed file is not in the cache and cannot be downloaded (offline or network failure)."""


def data_dir(cache_dir: str | Path | None = None) -> Path:
    """The root cache directory for dataset files: ``cache_dir``, else the package's ``data`` cache."""
    return Path(cache_dir).expanduser() if cache_dir is not None else package_cache_dir("data")


def dataset_dir(name: str, cache_dir: str | Path | None = None) -> Path:
    return data_dir(cache_dir) / name


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` when given, else whether ``DISENTBENCH_OFFLINE`` is set to a true value."""
    if offline is not None:
        return bool(offline)
    return os.environ.get("DISENTBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or raise :class:`DataError` naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache directory {path}: {exc.strerror or exc}; "
                        "set DISENTBENCH_DATA or --cache-dir to a writable directory") from exc
    if not os.access(path, os.W_OK):
        raise DataError(f"cache directory {path} is not writable; "
                        "set DISENTBENCH_DATA or --cache-dir to a writable directory")
    return path
