"""The package's one atomic-write helper and one cache-directory resolver.

Atomic write: the content goes to a temporary file beside the target (``.<name>.<random>.tmp``), is flushed and
fsync'ed, then renamed over the target with :func:`os.replace`, and the folder is fsync'ed. A crash, a kill or a
full disk never leaves a torn file: the target is either the old content or the new one. An existing target keeps
its file mode. Writers of a file object use :func:`atomic_write`; writers that need a file name (h5py, numpy
memmaps) use :func:`atomic_write_path`.

Cache: ``$DISENTBENCH_CACHE`` if set, else the user cache directory (platformdirs); each kind of cached data has a
sub-folder (``codes``, ``renders``, ``data``). ``$DISENTBENCH_DATA`` overrides the ``data`` folder alone (the
datasets are large and often live on another disk).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

TMP_SUFFIX = ".tmp"


class AtomicWriteError(OSError):
    """A file could not be written; any previous file at the target path is unchanged."""


def _is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, also when a writer (e.g. PyTorch's zip writer) re-raised it as another exception type."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


@contextmanager
def atomic_write_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that needs a file name (h5py, numpy memmaps); on a clean
    exit fsync it and ``os.replace`` it onto ``path``, keeping an existing target's mode.

    On any error the temporary file is removed and ``path`` is untouched; a file-system failure (disk full
    included) is re-raised as :class:`AtomicWriteError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write to directory {path.parent} ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _is_disk_full(exc):
            raise AtomicWriteError(errno.ENOSPC, f"disk full while writing {path}; the previous file, if any, "
                                                 f"is unchanged") from exc
        if isinstance(exc, OSError):
            raise AtomicWriteError(exc.errno, f"could not write {path} ({exc.strerror or exc}); the previous file, "
                                              f"if any, is unchanged") from exc
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(fileobj)`` on a binary temp file beside ``path``, then move it onto ``path`` (see
    :func:`atomic_write_path`: fsync'ed, mode kept, :class:`AtomicWriteError` on a file-system failure)."""
    with atomic_write_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines kept as given) atomically; see :func:`atomic_write`."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def remove_stale_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Delete the temp files a killed :func:`atomic_write` of ``folder/name`` left behind; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(folder.glob(f".{name}.*{TMP_SUFFIX}"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir(kind: str | None = None) -> Path:
    """The cache folder for ``kind`` (``codes``, ``renders``, ``data``, ...), or the cache root when None.

    Root: ``$DISENTBENCH_CACHE``, else platformdirs' user cache directory for ``disentbench``. The ``data`` kind
    honours ``$DISENTBENCH_DATA`` first.
    """
    if kind == "data" and os.environ.get("DISENTBENCH_DATA"):
        return Path(os.environ["DISENTBENCH_DATA"]).expanduser()
    env = os.environ.get("DISENTBENCH_CACHE")
    if env:
        root = Path(env).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("disentbench"))
    return root if kind is None else root / kind


__all__ = ["AtomicWriteError", "atomic_write", "atomic_write_path", "atomic_write_text", "cache_dir",
           "remove_stale_temporaries"]
