"""Optional on-disk cache of procedural renders, filled lazily.

``<cache>/<name>-v<version>/images.npy`` holds every grid image (a sparse file: unrendered rows cost no
disk) and ``rendered.npy`` one byte per index. Reads go through a read-only memory map; a batch's
missing images are rendered, written with ``os.pwrite`` (a full disk raises an error instead of
crashing a memory-mapped write) and only then marked rendered, so a concurrent reader sees either
"not rendered" or the finished pixels. Two processes rendering the same index write identical bytes,
because renders are a pure function of the factors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from filelock import FileLock

from disentbench.data.cache import DataError, data_dir, ensure_writable_dir
from disentbench.fileio import atomic_write_path


class RenderCache:
    """Lazily filled on-disk store of ``n`` uint8 images of shape ``image_shape``."""

    def __init__(self, directory: Path, n: int, image_shape: tuple[int, ...]):
        directory = ensure_writable_dir(Path(directory))
        self.images_path, self.mask_path = directory / "images.npy", directory / "rendered.npy"
        shape = (n, *image_shape)
        with FileLock(str(directory / ".create.lock")):
            for path, arr_shape in ((self.images_path, shape), (self.mask_path, (n,))):
                if not path.exists():
                    try:
                        with atomic_write_path(path) as tmp:
                            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=arr_shape).flush()
                    except OSError as exc:
                        raise DataError(f"cannot create render cache {path}: {exc.strerror or exc}") from exc
        self.images = np.load(self.images_path, mmap_mode="r")
        self.mask = np.load(self.mask_path, mmap_mode="r")
        if self.images.shape != shape or self.mask.shape != (n,):
            raise DataError(f"render cache {directory} holds {self.images.shape}, expected {shape}; delete it")
        self._row_bytes = int(np.prod(image_shape))
        self._image_offset, self._mask_offset = self.images.offset, self.mask.offset

    def read(self, indices: np.ndarray, render: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Images for validated 1-D indices; ``render(unique_missing_indices)`` fills the gaps."""
        have = self.mask[indices] == 1
        out = np.empty((len(indices), *self.images.shape[1:]), dtype=np.uint8)
        if have.any():
            out[have] = self.images[indices[have]]
        if not have.all():
            missing, inverse = np.unique(indices[~have], return_inverse=True)
            fresh = np.ascontiguousarray(render(missing), dtype=np.uint8)
            self._store(missing, fresh)
            out[~have] = fresh[inverse.reshape(-1)]
        return out

    def _store(self, indices: np.ndarray, images: np.ndarray) -> None:
        try:
            with open(self.images_path, "r+b") as img_fh, open(self.mask_path, "r+b") as mask_fh:
                for i, img in zip(indices.tolist(), images):
                    os.pwrite(img_fh.fileno(), img.tobytes(), self._image_offset + i * self._row_bytes)
                img_fh.flush()
                for i in indices.tolist():
                    os.pwrite(mask_fh.fileno(), b"\x01", self._mask_offset + i)
        except OSError as exc:
            raise DataError(f"cannot write the render cache {self.images_path}: {exc.strerror or exc}; "
                            "free space or open the dataset with cache=False") from exc


def render_cache(dataset, enabled: bool, cache_dir: str | Path | None) -> RenderCache | None:
    """The render cache of a procedural dataset under ``<cache>/<name>-v<version>/``, or None when disabled."""
    if not enabled:
        return None
    directory = data_dir(cache_dir) / f"{dataset.name}-v{dataset.version}"
    return RenderCache(directory, dataset.factor_space.n_points, (64, 64, dataset.channels))
