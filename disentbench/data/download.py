"""Download one manifest file: HTTP Range resume into ``<name>.part``, size + checksum check, atomic rename.

A file appears under its final name only after its size and checksum matched the manifest. The expected size is
the manifest's, else the server's (``Content-Length``, or the total of ``Content-Range`` on a resumed transfer):
a ``.part`` file shorter than that is a cut-off transfer and is kept so the next run resumes; only a complete
file that fails its check is deleted.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from filelock import FileLock

from disentbench.data.cache import ChecksumError, DataError, DatasetUnavailable, ensure_writable_dir, is_offline
from disentbench.data.manifest import FileSpec
from disentbench.fileio import atomic_write_text

_BLOCK = 1 << 20


def file_digest(path: Path, algo: str) -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in 1 MiB blocks."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, spec: FileSpec) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the manifest's size and checksum."""
    size = path.stat().st_size
    if spec.size and size != spec.size:
        raise ChecksumError(f"{path} has {size:,} bytes, expected {spec.describe()}")
    if spec.checksum:
        digest = file_digest(path, spec.algo)
        if digest != spec.digest:
            raise ChecksumError(f"{path} has {spec.algo} {digest}, expected {spec.describe()}")


def ensure_verified(path: Path, spec: FileSpec) -> None:
    """Verify ``path`` once: a ``<name>.verified`` marker records size, mtime and checksum of the last check."""
    marker = path.with_name(path.name + ".verified")
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "checksum": spec.checksum}
    try:
        if json.loads(marker.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    verify_file(path, spec)
    try:
        atomic_write_text(marker, json.dumps(key))
    except OSError:  # a read-only cache is simply verified again next time
        pass


def placement_hint(spec: FileSpec, directory: Path) -> str:
    urls = " or ".join(spec.urls) if spec.urls else "the dataset's homepage"
    return f"place {spec.describe()} at {directory / spec.name} (download it from {urls})"


def fetch_file(
    spec: FileSpec,
    directory: Path,
    *,
    offline: bool | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Return the verified file ``directory/spec.name``, downloading it first when absent."""
    final = directory / spec.name
    if final.is_file():
        return final
    if is_offline(offline):
        raise DatasetUnavailable(f"offline and {spec.name} is not in the cache: {placement_hint(spec, directory)}")
    ensure_writable_dir(directory)
    part = directory / (spec.name + ".part")
    with FileLock(str(part) + ".lock"):
        if final.is_file():  # another process finished it while we waited
            return final
        missing = spec.size - (part.stat().st_size if part.exists() else 0)
        free = shutil.disk_usage(directory).free
        if spec.size and missing > free:
            raise DataError(f"{spec.name} needs {missing:,} more bytes in {directory}, only {free:,} free")
        errors = []
        for url in spec.urls:
            try:
                served = _download(url, part, spec, progress=progress, timeout=timeout)
                break
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        else:
            tried = "; ".join(errors) or "no URL in the manifest"
            raise DatasetUnavailable(f"could not download {spec.name} ({tried}); {placement_hint(spec, directory)}")
        have = part.stat().st_size if part.exists() else 0
        expected = spec.size or served
        if expected and have < expected:
            raise DataError(
                f"download of {spec.name} stopped at {have:,} of {expected:,} bytes; run the command again to resume"
            )
        try:
            verify_file(part, spec)
        except ChecksumError as exc:
            part.unlink(missing_ok=True)
            raise ChecksumError(f"download of {spec.name} failed verification and was deleted: {exc}") from None
        os.replace(part, final)
    return final


def _total_size(response, have: int) -> int | None:
    """The whole file's size as the server states it: ``Content-Range``'s total, else offset + ``Content-Length``."""
    match = re.fullmatch(r"bytes [0-9*-]+/(\d+)", (response.headers.get("Content-Range") or "").strip())
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _download(url: str, part: Path, spec: FileSpec, *, progress: bool, timeout: float) -> int | None:
    """Append the rest of ``url`` to ``part``; returns the file's full size as the server states it (None: unknown)."""
    have = part.stat().st_size if part.exists() else 0
    if spec.size and have > spec.size:
        part.unlink()
        have = 0
    if spec.size and have == spec.size:
        return spec.size
    request = urllib.request.Request(url, headers={"User-Agent": "disentbench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is complete
            return _total_size(exc, have) or have
        raise
    with response:
        if have and response.status != 206:  # server ignored the range: start again
            have = 0
        total = _total_size(response, have)
        from tqdm import tqdm

        with open(part, "r+b" if have else "wb") as out, tqdm(
            total=spec.size or total, initial=have, unit="B", unit_scale=True, desc=spec.name, disable=not progress
        ) as bar:
            out.seek(have)
            out.truncate()
            try:
                for block in iter(lambda: response.read(_BLOCK), b""):
                    out.write(block)
                    bar.update(len(block))
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise DataError(
                        f"disk full while writing {part}; free space and run the command again to resume"
                    ) from exc
                raise
    return total
