"""One shared check of metric inputs, and the small helpers every metric needs.

All metrics take ``factors`` (n_samples, n_factors) and ``codes`` (n_samples, n_codes).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np


class MetricWarning(UserWarning):
    """A property of the input a user should know about (constant codes, skipped factors)."""


class InputSizeWarning(MetricWarning):
    """The pre-flight check's estimate: the selection needs a lot of memory on this input."""


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


#: peak memory above which :func:`preflight` warns (bytes)
MEMORY_WARNING_BYTES = 1 << 30
#: float64 copies of the rows a metric uses that it holds at peak (measured with tracemalloc: 6.5 for the
#: information metrics, 8 for Spearman)
_ROW_COPIES = 8
#: votes / points gathered per chunk by FactorVAE / BetaVAE, ``batch_size`` rows each
_GROUP_CHUNK = 2048


def preflight(factors, codes, discrete, settings: dict[str, dict]) -> list[str]:
    """Check a whole selection before any metric runs; ``settings`` maps each metric to its full settings.

    Raises ``ValueError`` on bad arrays, unflagged non-integer factors, or metrics whose ``n_train + n_test``
    exceed the rows (all of them named in one message). Returns notes: a memory estimate when it passes
    :data:`MEMORY_WARNING_BYTES` (wide codes).
    """
    factors, codes = check_factors_codes(factors, codes)
    check_discrete(discrete, factors, metric="factors")
    n_rows, n_codes = codes.shape
    split = {name: s["n_train"] + s["n_test"] for name, s in settings.items() if {"n_train", "n_test"} <= s.keys()}
    short = {name: rows for name, rows in split.items() if rows > n_rows}
    if short:
        need = ", ".join(f"{name} needs {rows:,}" for name, rows in short.items())
        raise ValueError(
            f"too few rows: the input has {n_rows:,}, but {need} (n_train + n_test); lower n_train/n_test "
            f"(disentbench score --n-train/--n-test) or leave these metrics out"
        )
    peak = {name: _peak_bytes(s, n_rows, n_codes) for name, s in settings.items()}
    worst = max(peak, key=peak.get, default=None)
    if worst is None or peak[worst] < MEMORY_WARNING_BYTES:
        return []
    return [f"wide input ({n_rows:,} rows x {n_codes:,} codes): about {peak[worst] / 2**30:.1f} GiB of memory at "
            f"peak ({worst}); select fewer metrics or fewer codes if that does not fit"]


def _peak_bytes(settings: dict, n_rows: int, n_codes: int) -> int:
    """Rough peak memory of one metric, from the rows it uses (or the rows it gathers per chunk)."""
    if "batch_size" in settings:
        return 2 * _GROUP_CHUNK * settings["batch_size"] * n_codes * 8  # gathered rows + their variance (measured)
    rows = settings.get("n_samples") or n_rows
    if "n_train" in settings and "n_test" in settings:
        rows = settings["n_train"] + settings["n_test"]
    return _ROW_COPIES * min(rows, n_rows) * n_codes * 8


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


def check_discrete(discrete: bool | Sequence[bool] | None, factors: np.ndarray, *, metric: str) -> np.ndarray:
    """Per-factor discrete flags (``None``: every factor discrete, the reference's assumption).

    A discrete factor is given by its class indices: a discrete-flagged column with non-integer values is refused
    (each distinct float would become a class), with a message saying how to flag it continuous.
    """
    n_factors = factors.shape[1]
    if discrete is None:
        flags = np.ones(n_factors, dtype=bool)
    else:
        flags = np.array(np.broadcast_to(discrete, (n_factors,)) if np.ndim(discrete) == 0 else discrete, dtype=bool)
        if flags.shape != (n_factors,):
            raise ValueError(f"discrete must give one flag per factor ({n_factors}), got {len(flags)}")
    fractional = np.flatnonzero(flags & non_integer_columns(factors))
    if fractional.size:
        column = factors[:, fractional[0]]
        example = column[column != np.round(column)][0]
        raise ValueError(
            f"{metric}: factor columns {fractional.tolist()} hold non-integer values (e.g. {example:.6g}) but are "
            f"treated as discrete classes; flag continuous factors with discrete=False (they are binned or "
            f"regressed; CLI: --continuous-factors) or pass class indices (np.unique(v, return_inverse=True)[1])"
        )
    return flags


def check_grouping_factors(discrete, factors: np.ndarray, *, metric: str) -> None:
    """Refuse continuous factors in a metric that groups rows by factor value (FactorVAE, BetaVAE)."""
    continuous = np.flatnonzero(~check_discrete(discrete, factors, metric=metric))
    if continuous.size:
        raise ValueError(
            f"{metric} groups rows by factor value and needs discrete factors; factor columns {continuous.tolist()} "
            f"are continuous: pass their class indices or leave {metric} out"
        )


def non_integer_columns(factors: np.ndarray) -> np.ndarray:
    """Mask of factor columns holding a value that is not a whole number."""
    return np.any(factors != np.round(factors), axis=0)


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
