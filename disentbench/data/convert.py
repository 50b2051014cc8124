"""One-time, resumable conversion of official files into raw ``.npy`` arrays read by memory map.

``convert_rows`` fills ``<out>.part`` block by block from a source, recording the rows done in
``<out>.part.json`` after each flushed block, so an interrupted conversion resumes where it stopped.
When every row is written the file is checked (header, byte size) and renamed to ``<out>``, with
``<out>.json`` recording the source it came from.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from disentbench.data.cache import DataError
from disentbench.fileio import atomic_write_text

Blocks = Callable[[int], Iterator[np.ndarray]]


def _human(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def open_converted(out: Path, sources: set[str]) -> np.ndarray | None:
    """Memory map of a finished conversion made from one of ``sources``; a damaged one is deleted (None)."""
    if converted_source(out) not in sources:
        return None
    try:
        return np.load(out, mmap_mode="r")
    except (OSError, ValueError):
        out.unlink(missing_ok=True)
        out.with_name(out.name + ".json").unlink(missing_ok=True)
        return None


def converted_source(out: Path) -> str | None:
    """The source id recorded beside a finished conversion, or None when there is none."""
    meta = out.with_name(out.name + ".json")
    if not (out.is_file() and meta.is_file()):
        return None
    try:
        return json.loads(meta.read_text()).get("source")
    except (OSError, ValueError):
        return None


def convert_rows(
    out: Path,
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    source_id: str,
    blocks: Blocks,
    *,
    progress: bool = True,
    desc: str = "converting",
) -> Path:
    """Write ``shape``/``dtype`` rows yielded by ``blocks(start_row)`` into the ``.npy`` file ``out``.

    A file lock on ``<out>.lock`` lets one process convert while others wait and then reuse the result.
    """
    if converted_source(out) == source_id:
        return out
    from filelock import FileLock

    try:
        lock = FileLock(str(out) + ".lock")
        lock.acquire()
    except OSError as exc:
        raise DataError(f"cannot lock {out}.lock: {exc.strerror or exc}; is the cache directory writable?") from exc
    try:
        if converted_source(out) == source_id:
            return out
        return _convert_locked(out, shape, dtype, source_id, blocks, progress=progress, desc=desc)
    finally:
        lock.release()


def _convert_locked(out, shape, dtype, source_id, blocks, *, progress, desc) -> Path:
    part = out.with_name(out.name + ".part")
    state_path = out.with_name(out.name + ".part.json")
    state = {"source": source_id, "shape": list(shape), "dtype": np.dtype(dtype).str, "rows": 0}
    if part.exists() and state_path.exists():
        try:
            saved = json.loads(state_path.read_text())
        except ValueError:
            saved = {}
        if all(saved.get(k) == state[k] for k in ("source", "shape", "dtype")):
            state["rows"] = int(saved.get("rows", 0))
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    needed = (shape[0] - state["rows"]) * row_bytes
    free = shutil.disk_usage(out.parent).free
    if needed > free:
        raise DataError(f"{desc}: converting needs {_human(needed)} in {out.parent}, only {_human(free)} free")
    try:
        if not state["rows"]:  # header plus a sparse body; rows are then written with pwrite
            np.lib.format.open_memmap(part, mode="w+", dtype=dtype, shape=shape).flush()
        offset = np.load(part, mmap_mode="r").offset
        atomic_write_text(state_path, json.dumps(state))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write {part}: {exc}; free space or choose another cache directory") from exc
    from tqdm import tqdm

    row = state["rows"]
    # pwrite, not a writable memory map: a full disk then raises ENOSPC instead of killing the process
    with open(part, "r+b") as fh, tqdm(total=shape[0], initial=row, unit="img", desc=desc, disable=not progress) as bar:
        for block in blocks(row):
            if row + len(block) > shape[0] or block.shape[1:] != tuple(shape[1:]):
                raise DataError(f"{desc}: source block of shape {block.shape} does not fit rows {row}.. of {shape}")
            data = np.ascontiguousarray(block, dtype=dtype).tobytes()
            try:
                os.pwrite(fh.fileno(), data, offset + row * row_bytes)
                os.fsync(fh.fileno())
            except OSError as exc:
                raise DataError(f"cannot write {part}: {exc.strerror or exc}; free space and run again to resume") from exc
            row += len(block)
            state["rows"] = row
            atomic_write_text(state_path, json.dumps(state))
            bar.update(len(block))
    if row != shape[0]:
        raise DataError(f"{desc}: source ended after {row} of {shape[0]} rows")
    check = np.load(part, mmap_mode="r")
    if check.shape != tuple(shape) or check.dtype != np.dtype(dtype):
        raise DataError(f"{desc}: converted file has {check.shape} {check.dtype}, expected {shape} {dtype}")
    del check
    atomic_write_text(out.with_name(out.name + ".json"),
                      json.dumps({"source": source_id, "shape": list(shape), "dtype": state["dtype"]}))
    os.replace(part, out)
    state_path.unlink(missing_ok=True)
    return out


# -- npz members --------------------------------------------------------------------------------------
def _read_npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def npz_member_info(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of array ``key`` inside an ``.npz`` without loading it."""
    with zipfile.ZipFile(path) as zf:
        try:
            with zf.open(f"{key}.npy") as fh:
                shape, fortran, dtype = _read_npy_header(fh)
        except KeyError:
            raise DataError(f"{path} has no array {key!r}; it holds {sorted(zf.namelist())}") from None
    if fortran:
        raise DataError(f"{path}: array {key!r} is Fortran-ordered, expected C order")
    return tuple(shape), dtype


def stored_npz_member(path: Path, key: str) -> np.memmap | None:
    """A read-only memory map of ``key`` when the npz stores it uncompressed, else None."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as raw:
            raw.seek(info.header_offset)
            local = raw.read(30)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            raw.seek(info.header_offset + 30 + name_len + extra_len)
            shape, fortran, dtype = _read_npy_header(raw)
            offset = raw.tell()
    if fortran:
        raise DataError(f"{path}: array {key!r} is Fortran-ordered, expected C order")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


def npz_blocks(path: Path, key: str, rows_per_block: int) -> Blocks:
    """Sequential row blocks of an npz array, decompressing as a stream (resume skips rows by reading)."""

    def blocks(start: int) -> Iterator[np.ndarray]:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            shape, _, dtype = _read_npy_header(fh)
            row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            row = 0
            while row < shape[0]:
                n = min(rows_per_block, shape[0] - row)
                buf = fh.read(n * row_bytes)
                if len(buf) != n * row_bytes:
                    raise DataError(f"{path}: array {key!r} is truncated at row {row}")
                if row + n > start:
                    block = np.frombuffer(buf, dtype=dtype).reshape((n,) + tuple(shape[1:]))
                    yield block[max(start - row, 0) :]
                row += n

    return blocks


def array_blocks(array, rows_per_block: int) -> Blocks:
    """Sequential row blocks of any sliceable array (HDF5 dataset, memmap)."""

    def blocks(start: int) -> Iterator[np.ndarray]:
        for row in range(start, array.shape[0], rows_per_block):
            yield np.asarray(array[row : row + rows_per_block])

    return blocks
