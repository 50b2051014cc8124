"""The code table of a model on a dataset: a seeded sample of grid indices, encoded in batches, cached.

``n_points`` grid indices are drawn without replacement (the whole grid when it is smaller) and encoded in
batches with bounded memory. Interventional metrics (FactorVAE, BetaVAE) group rows of this table that share a
factor value, so one code table serves every metric. Codes are cached under ``cache_dir("codes")`` keyed by
(model file SHA-256, dataset name + version, SHA-256 of the indices).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from disentbench.evaluation.sources import EvaluationError, ModelSource, check_codes
from disentbench.fileio import atomic_write, cache_dir

DEFAULT_BATCH_SIZE = 256


def sample_indices(n_grid: int, n_points: int | None, seed: int) -> np.ndarray:
    """Sorted grid indices: the whole grid if ``n_points`` is None or >= ``n_grid``, else a seeded draw without replacement."""
    if n_points is not None and n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    if n_points is None or n_points >= n_grid:
        return np.arange(n_grid, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_grid, size=n_points, replace=False)).astype(np.int64)


def unit_images(images: np.ndarray, dataset) -> np.ndarray:
    """uint8 (n, H, W, C) -> float32 (n, C, H, W) in [0, 1], dividing by the dataset's ``pixel_max``
    (1 for the binary dSprites images, 255 otherwise)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(dataset.pixel_max)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def encode(
    encoder: Callable[[np.ndarray], Any],
    dataset,
    indices: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> np.ndarray:
    """Codes float32 (n, d) for grid ``indices``, encoded in batches (memory: one batch of images)."""
    from tqdm import tqdm

    codes: np.ndarray | None = None
    n = len(indices)
    with tqdm(total=n, desc=f"encoding {dataset.name}", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            batch = indices[start : start + batch_size]
            images = unit_images(dataset.images(batch), dataset)
            try:
                out = encoder(images)
            except Exception as exc:  # a foreign encoder (TorchScript) may raise anything: report it in one line
                first = (str(exc).strip().splitlines() or [""])[-1][:300]
                raise EvaluationError(f"the encoder raised {type(exc).__name__} on a batch of shape "
                                      f"{tuple(images.shape)}: {first}") from None
            out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
            if out.ndim != 2 or out.shape[0] != len(batch):
                raise EvaluationError(
                    f"the encoder returned shape {tuple(out.shape)} for a batch of {len(batch)} images "
                    f"(input shape ({len(batch)}, {dataset.channels}, 64, 64)); expected ({len(batch)}, d)"
                )
            if codes is None:
                codes = np.empty((n, out.shape[1]), dtype=np.float32)
            elif out.shape[1] != codes.shape[1]:
                raise EvaluationError(f"the encoder's code width changed from {codes.shape[1]} to {out.shape[1]}")
            codes[start : start + len(batch)] = out
            bar.update(len(batch))
    assert codes is not None
    return codes


def codes_cache_path(source: ModelSource, dataset, indices: np.ndarray, root: Path | None = None) -> Path:
    """``<root>/codes/<key>.npz`` (root: the package cache), key = SHA-256 of (model SHA-256, dataset name,
    dataset version, SHA-256 of the indices)."""
    indices_hash = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()
    key = json.dumps([source.sha256, dataset.name, dataset.version, indices_hash])
    folder = Path(root) / "codes" if root else cache_dir("codes")
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def cached_codes(
    source: ModelSource,
    dataset,
    indices: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    use_cache: bool = True,
    root: Path | None = None,
) -> tuple[np.ndarray, bool]:
    """Codes for ``indices`` from the cache or by encoding (then cached). Returns ``(codes, from_cache)``."""
    path = codes_cache_path(source, dataset, indices, root)
    if use_cache and path.exists():
        try:
            with np.load(path) as data:
                if np.array_equal(data["indices"], indices):
                    return check_codes(data["codes"], f"cached codes {path}"), True
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: re-encode and overwrite it
    codes = check_codes(encode(source.encoder, dataset, indices, batch_size=batch_size, progress=progress), str(source.path))
    if use_cache:
        atomic_write(path, lambda fh: np.savez(fh, codes=codes, indices=indices))
    return codes, False
