"""Discretisation, plug-in entropies and a vectorised mutual-information matrix (nats), in numpy.

Shared by every information metric (MIG, MIG-sup, JEMMIG, DCIMIG, modularity, InfoMEC). Everything is
computed here with ``np.bincount`` rather than ``sklearn.metrics.mutual_info_score`` so that a
scikit-learn upgrade cannot move a score; on the same labels the values agree with scikit-learn's to
floating-point rounding (tested).

Public API: :func:`discretize`, :func:`mutual_info_matrix`, :func:`entropies`,
:func:`information_statistics` (validation + subsampling + discretisation + MI in one call).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from disentbench.metrics._validation import (
    check_discrete,
    check_factors_codes,
    constant_columns,
    factor_labels,
    informative_factors,
    note,
    rng_from,
    subsample,
)

DISCRETIZERS = ("histogram", "quantile")
#: upper bound on the number of joint-histogram cells counted in one ``np.bincount`` call
_MAX_CELLS = 1 << 22


def discretize(x, n_bins: int = 20, *, strategy: str = "histogram") -> np.ndarray:
    """Integer labels ``0..n_bins-1`` per column of ``x`` (n_samples, n_columns).

    ``"histogram"`` (the reference): equal-width bins, exactly as disentanglement_lib's
    ``np.digitize(x, np.histogram(x, n_bins)[1][:-1])`` (shifted to start at 0); a constant column
    gets the single label 0. ``"quantile"``: equal-frequency bins on ranks (ties share a bin), which
    makes the labels invariant under any strictly monotone transform of a column.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"discretize expects a 2-D array (n_samples, n_columns), got shape {x.shape}")
    if int(n_bins) != n_bins or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    n_bins = int(n_bins)
    if strategy not in DISCRETIZERS:
        raise ValueError(f"unknown discretizer {strategy!r}; choose from {DISCRETIZERS}")
    labels = np.zeros(x.shape, dtype=np.int64)
    if x.shape[0] == 0:
        return labels
    if strategy == "quantile":
        from scipy.stats import rankdata

        ranks = rankdata(x, method="min", axis=0) - 1  # 0..n-1, ties share the lowest rank
        return np.minimum((ranks * n_bins) // x.shape[0], n_bins - 1).astype(np.int64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    for j in np.flatnonzero(hi > lo):
        # identical to np.histogram's edges: linspace(min, max, n_bins + 1)
        edges = np.linspace(lo[j], hi[j], n_bins + 1)
        labels[:, j] = np.searchsorted(edges[:-1], x[:, j], side="right") - 1
    return labels


def _as_labels(labels, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be integer labels, got dtype {labels.dtype}")
    labels = labels.astype(np.int64, copy=False)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} must be non-negative integer labels")
    return labels


def _plogp_sum(counts: np.ndarray, n: int, axis) -> np.ndarray:
    """``-sum p log p`` of count arrays (p = counts / n) along ``axis``; 0 log 0 = 0."""
    c = counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0)
    return np.log(n) - terms.sum(axis=axis) / n


def entropies(labels) -> np.ndarray:
    """Plug-in entropy (nats) of each column of integer ``labels`` (n_samples, n_columns)."""
    labels = _as_labels(labels, "labels")
    n = labels.shape[0]
    if n == 0:
        return np.zeros(labels.shape[1])
    out = np.empty(labels.shape[1])
    for j in range(labels.shape[1]):
        out[j] = _plogp_sum(np.bincount(labels[:, j]), n, axis=0)
    return np.maximum(out, 0.0)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Relabel each column to 0..(number of distinct labels - 1), keeping the order (keeps histograms small)."""
    out = np.empty_like(labels)
    for j in range(labels.shape[1]):
        col = labels[:, j]
        if col.max() < 4 * len(col) + 64:
            present = np.bincount(col) > 0
            out[:, j] = (np.cumsum(present) - 1)[col]
        else:
            out[:, j] = np.unique(col, return_inverse=True)[1].reshape(-1)
    return out


def mutual_info_matrix(code_labels, factor_labels) -> np.ndarray:
    """Plug-in mutual information I(z_j; v_k) in nats, shaped (n_codes, n_factors).

    I(z; v) = H(z) + H(v) - H(z, v) with every entropy taken from the empirical (contingency)
    distribution — the estimator of ``sklearn.metrics.mutual_info_score`` used by the reference.
    All joint histograms are counted with one ``np.bincount`` per chunk of codes.
    """
    z = _as_labels(code_labels, "code_labels")
    v = _as_labels(factor_labels, "factor_labels")
    if z.shape[0] != v.shape[0]:
        raise ValueError(f"code_labels and factor_labels must have the same rows: {z.shape[0]} vs {v.shape[0]}")
    n, n_codes = z.shape
    n_factors = v.shape[1]
    if n == 0:
        return np.zeros((n_codes, n_factors))
    z, v = _compact(z), _compact(v)
    n_z = int(z.max()) + 1
    n_v = int(v.max()) + 1
    h_z, h_v = entropies(z), entropies(v)
    cells = n_z * n_v
    # per pair (j, k) a block of n_z * n_v cells: cell = block(j, k) + z_j * n_v + v_k
    per_code = n_factors * cells
    z_cells = z * n_v  # code part, offset per chunk below
    v_cells = v + (np.arange(n_factors) * cells)[None, :]
    chunk = max(1, min(n_codes, _MAX_CELLS // max(per_code, 1), _MAX_CELLS // max(n * n_factors, 1)))
    h_joint = np.empty((n_codes, n_factors))
    for start in range(0, n_codes, chunk):
        stop = min(start + chunk, n_codes)
        z_part = z_cells[:, start:stop] + np.arange(stop - start) * per_code
        idx = z_part[:, :, None] + v_cells[:, None, :]
        counts = np.bincount(idx.ravel(), minlength=(stop - start) * per_code)
        h_joint[start:stop] = _plogp_sum(counts.reshape(stop - start, n_factors, cells), n, axis=2)
    mi = h_z[:, None] + h_v[None, :] - h_joint
    # I <= min(H(z), H(v)) exactly for the plug-in estimator; remove rounding excursions
    return np.clip(mi, 0.0, np.minimum(h_z[:, None], h_v[None, :]))


@dataclass
class InfoStatistics:
    """What the information metrics share: labels, entropies and the MI matrix of one representation.

    ``mutual_info`` is (n_codes, n_factors) in nats; ``factor_mask`` marks the factors that are
    scored (single-valued ones are skipped); ``constant_codes`` marks collapsed code columns;
    ``settings`` holds the estimator settings every information metric records.
    """

    mutual_info: np.ndarray
    code_entropy: np.ndarray
    factor_entropy: np.ndarray
    factor_mask: np.ndarray
    constant_codes: np.ndarray
    codes: np.ndarray
    factors: np.ndarray
    n_samples: int
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def factor_labels_for(factors: np.ndarray, discrete: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Discrete factors as class labels (values in sorted order); continuous ones binned like codes."""
    whole = factors == np.round(factors)
    if whole.all() and factors.min() >= 0 and factors.max() < 4 * len(factors) + 64:
        labels = _compact(factors.astype(np.int64))  # same labels as np.unique, without sorting
    else:
        labels = factor_labels(factors)
    if (~discrete).any():
        labels[:, ~discrete] = discretize(factors[:, ~discrete], n_bins, strategy=strategy)
    return labels


def warn_constant_codes(codes: np.ndarray, metric: str, notes: list[str]) -> np.ndarray:
    """Mask of constant code columns, with one warning naming them (collapsed latents carry no information)."""
    constant = constant_columns(codes)
    if constant.any():
        cols = np.flatnonzero(constant).tolist()
        note(notes, f"{metric}: code columns {cols} are constant (collapsed); they carry no information")
    return constant


def information_statistics(
    factors,
    codes,
    *,
    metric: str,
    discrete=None,
    random_state=0,
    n_samples: int | None = 10_000,
    n_bins: int = 20,
    discretizer: str = "histogram",
) -> InfoStatistics:
    """Validate, subsample ``n_samples`` rows (seeded), discretise codes and compute the MI matrix."""
    factors, codes = check_factors_codes(factors, codes)
    flags = check_discrete(discrete, factors, metric=metric)
    if n_samples is not None and n_samples < 2:
        raise ValueError(f"{metric}: n_samples must be at least 2 (or None for all rows), got {n_samples}")
    rows = subsample(factors.shape[0], n_samples, rng_from(random_state))
    factors, codes = factors[rows], codes[rows]
    notes: list[str] = []
    mask = informative_factors(factors, metric, notes)
    constant = warn_constant_codes(codes, metric, notes)
    z = discretize(codes, n_bins, strategy=discretizer)
    v = factor_labels_for(factors, flags, n_bins, discretizer)
    return InfoStatistics(
        mutual_info=mutual_info_matrix(z, v),
        code_entropy=entropies(z),
        factor_entropy=entropies(v),
        factor_mask=mask,
        constant_codes=constant,
        codes=codes,
        factors=factors,
        n_samples=len(rows),
        settings={"n_samples": n_samples, "n_bins": n_bins, "discretizer": discretizer,
                  "random_state": random_state, "n_rows_used": len(rows)},
        notes=notes,
    )
