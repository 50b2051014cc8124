"""One shared check of metric inputs, and the small helpers every metric needs.

All metrics take ``factors`` (n_samples, n_factors) and ``codes`` (n_samples, n_codes).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np


class MetricWarning(UserWarning):
    """A property of the input a user should know about (constant codes, skipped factors)."""


def check_factors_codes(factors, codes, *, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(factors, codes)`` as 2-D float64 arrays, or raise ``ValueError`` naming the problem."""
    factors = _as_2d(factors, "factors", "n_factors")
    codes = _as_2d(codes, "codes", "n_codes")
    if factors.shape[0] != codes.shape[0]:
        raise ValueError(
            f"factors and codes must have the same number of rows (samples): "
            f"got {factors.shape[0]} factor rows and {codes.shape[0]} code rows"
        )
    if factors.shape[0] < min_samples:
        raise ValueError(f"need at least {min_samples} samples, got {factors.shape[0]}")
    _check_finite(factors, "factors")
    _check_finite(codes, "codes")
    return factors, codes


def _as_2d(x, name: str, width: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, {width}), got a 1-D array of length {arr.shape[0]}; "
            f"use {name}[:, None] for a single column"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {width}), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        kind = "NaN" if np.isnan(arr[rows[0], cols[0]]) else "inf"
        raise ValueError(
            f"{name} contain {int(bad.sum())} non-finite values ({kind} first at row {rows[0]}, column {cols[0]}); "
            f"columns affected: {sorted(set(cols.tolist()))[:10]}"
        )


def check_discrete(discrete: bool | Sequence[bool] | None, n_factors: int) -> np.ndarray:
    """Per-factor discrete flags; ``None`` means every factor is discrete (the reference's assumption)."""
    if discrete is None:
        return np.ones(n_factors, dtype=bool)
    flags = np.broadcast_to(np.asarray(discrete, dtype=bool), (n_factors,)) if np.ndim(discrete) == 0 else np.asarray(
        discrete, dtype=bool
    )
    if flags.shape != (n_factors,):
        raise ValueError(f"discrete must give one flag per factor ({n_factors}), got {len(flags)}")
    return flags.copy()


def factor_labels(factors: np.ndarray) -> np.ndarray:
    """Integer labels 0..K_k-1 per factor column (values mapped by sorted order)."""
    labels = np.empty(factors.shape, dtype=np.int64)
    for k in range(factors.shape[1]):
        labels[:, k] = np.unique(factors[:, k], return_inverse=True)[1].reshape(-1)
    return labels


def constant_columns(x: np.ndarray) -> np.ndarray:
    """Boolean mask of columns whose values are all equal (e.g. collapsed VAE latents)."""
    return np.all(x == x[:1], axis=0)


def note(notes: list[str], message: str) -> None:
    """Record a warning on a result and emit it as a :class:`MetricWarning`."""
    notes.append(message)
    warnings.warn(message, MetricWarning, stacklevel=3)


def informative_factors(factors: np.ndarray, names: str, notes: list[str]) -> np.ndarray:
    """Mask of factors with more than one value; single-valued ones are skipped with a warning."""
    single = constant_columns(factors)
    for k in np.flatnonzero(single):
        note(notes, f"{names}: factor {k} has a single value and is skipped")
    if single.all():
        raise ValueError("every factor has a single value: nothing to measure")
    return ~single


def rng_from(random_state) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator, or None (fresh entropy)."""
    return np.random.default_rng(random_state)


def subsample(n_total: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Row indices: all rows in order when ``n`` is None or >= n_total, else ``n`` drawn without replacement."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, size=n, replace=False))


def train_test_indices(
    n_total: int, n_train: int, n_test: int, rng: np.random.Generator, *, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random train/test row indices; raises if there are too few rows."""
    if n_train < 1 or n_test < 1:
        raise ValueError(f"{metric}: n_train and n_test must be positive, got {n_train} and {n_test}")
    if n_train + n_test > n_total:
        raise ValueError(
            f"{metric}: too few samples for the requested split: {n_train} train + {n_test} test "
            f"> {n_total} samples (lower n_train/n_test or pass more samples)"
        )
    perm = rng.permutation(n_total)
    return perm[:n_train], perm[n_train : n_train + n_test]


def seed_for_sklearn(rng: np.random.Generator) -> int:
    """An int seed for a scikit-learn estimator, drawn from ``rng`` (never the global RNG)."""
    return int(rng.integers(0, 2**31 - 1))
