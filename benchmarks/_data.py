"""Synthetic code tables over a dSprites-like factor grid, shared by the benchmark and the parity script."""

from __future__ import annotations

import numpy as np

GRID = (3, 6, 40, 32, 32)  # dSprites: shape, scale, orientation, pos x, pos y
KINDS = ("noisy", "mixed", "partial")


def grid_factors(n: int, seed: int, sizes=GRID) -> np.ndarray:
    """``n`` factor rows drawn uniformly from the grid (integer classes)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def representation(factors: np.ndarray, kind: str, seed: int, n_codes: int = 10) -> np.ndarray:
    """Codes (n, n_codes) for factors: ``noisy`` = scaled factors + noise, ``mixed`` = a rotation of it,
    ``partial`` = only three factors encoded, plus one collapsed (constant) code. Remaining dims: noise."""
    rng = np.random.default_rng(seed)
    sizes = factors.max(axis=0) + 1
    scaled = factors / sizes - 0.5
    n, k = factors.shape
    codes = 0.3 * rng.normal(size=(n, n_codes))
    if kind == "noisy":
        codes[:, :k] = scaled + 0.05 * rng.normal(size=(n, k))
    elif kind == "mixed":
        codes[:, :k] = scaled + 0.05 * rng.normal(size=(n, k))
        q, _ = np.linalg.qr(rng.normal(size=(n_codes, n_codes)))
        codes = codes @ q
    elif kind == "partial":
        codes[:, :3] = scaled[:, 2:] + 0.05 * rng.normal(size=(n, 3))
        codes[:, -1] = 0.0
    else:
        raise ValueError(f"unknown representation kind {kind!r}; choose from {KINDS}")
    return codes
