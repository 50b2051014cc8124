"""Synthetic representations over a dSprites-like factor grid, shared by the benchmark and the parity script.

A representation assigns fixed codes to every grid point (like an encoder applied to every image), so the
reference can sample from the grid while our metrics score a table of rows drawn from it.
"""

from __future__ import annotations

import numpy as np

GRID = (3, 6, 40, 32, 32)  # dSprites: shape, scale, orientation, pos x, pos y
KINDS = ("noisy", "mixed", "partial")


def grid_factors(sizes=GRID) -> np.ndarray:
    """Every factor combination, row-major (row i = np.unravel_index(i, sizes))."""
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)


def representation(factors: np.ndarray, kind: str, seed: int, n_codes: int = 10, sizes=GRID) -> np.ndarray:
    """Codes (n, n_codes) for integer factors: ``noisy`` = scaled factors + noise, ``mixed`` = a rotation of it,
    ``partial`` = only the last three factors encoded, plus one collapsed (constant) code. Other dims: noise."""
    rng = np.random.default_rng(seed)
    scaled = factors / np.asarray(sizes) - 0.5
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


def grid_problem(kind: str, n_samples: int, seed: int = 0, sizes=GRID, table_seed: int = 0):
    """(grid_codes for every grid point, factors and codes of ``n_samples`` rows drawn uniformly from the grid).

    ``seed`` fixes the representation, ``table_seed`` which rows are drawn."""
    grid = grid_factors(sizes)
    grid_codes = representation(grid, kind, seed, sizes=sizes)
    rows = np.random.default_rng([table_seed, 1]).integers(0, len(grid), n_samples)
    return grid_codes, grid[rows], grid_codes[rows]
