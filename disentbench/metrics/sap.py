"""SAP, the Separated Attribute Predictability score (Kumar et al. 2018, ICLR, sec. 3).

Score matrix S (n_codes, n_factors): for a discrete factor k, S_jk = test accuracy of
``LinearSVC(C=0.01, class_weight="balanced")`` trained on code j alone (disentanglement_lib's setting;
solved exactly with prefix sums, see :mod:`disentbench.metrics._linear_svc_1d`);
for a continuous factor, S_jk = corr(z_j, v_k)^2 (0 for a constant code).
SAP = mean_k (S_(1)k - S_(2)k), the gap between the two largest entries of column k.

Constant codes carry no information: they are warned about; a classifier on a constant code predicts one
class and scores that class's test frequency (the reference behaviour).
"""

from __future__ import annotations

import numpy as np

from disentbench.metrics._importance import usable_factors
from disentbench.metrics._linear_svc_1d import accuracies
from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import (
    check_discrete,
    check_factors_codes,
    constant_columns,
    factor_labels,
    note,
    rng_from,
    train_test_indices,
)
from disentbench.metrics.registry import UNIT, register_metric


def top_two_gap(score_matrix: np.ndarray) -> np.ndarray:
    """Per factor (column): largest minus second-largest entry (the entry itself with a single code)."""
    s = np.sort(score_matrix, axis=0)
    return s[-1] - s[-2] if s.shape[0] > 1 else s[-1]


def squared_correlation(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(n_codes, n_factors) matrix of squared Pearson correlations; 0 for constant columns."""
    zc = codes - codes.mean(axis=0)
    fc = factors - factors.mean(axis=0)
    cov = zc.T @ fc
    var = np.outer((zc**2).sum(axis=0), (fc**2).sum(axis=0))
    out = np.zeros_like(cov)
    ok = var > 1e-12 * len(codes) ** 2
    out[ok] = cov[ok] ** 2 / var[ok]
    return out


@register_metric(
    "sap",
    family="predictor",
    properties=("compactness", "explicitness"),
    description="SAP: mean gap between the two most predictive single codes per factor",
    scores={"sap.score": UNIT},
)
def sap(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_train: int = 10_000,
    n_test: int = 5_000,
    svc_c: float = 0.01,
) -> MetricResult:
    """SAP score (Kumar et al. 2018) with disentanglement_lib's settings.

    Scores ``sap.score``; matrices ``score`` (n_codes, n_used_factors) and ``factor_index``.
    Continuous factors use the n_train rows only. The classifier is solved exactly by
    :mod:`disentbench.metrics._linear_svc_1d` (the same objective as liblinear, without its randomness).
    """
    factors, codes = check_factors_codes(factors, codes)
    flags = check_discrete(discrete, factors, metric="sap")
    notes: list[str] = []
    rng = rng_from(random_state)
    train, test = train_test_indices(len(codes), n_train, n_test, rng, metric="sap")
    used = usable_factors(factors[train], "sap", notes)
    constant = constant_columns(codes[train])
    if constant.any():
        note(notes, f"sap: constant codes {np.flatnonzero(constant).tolist()} carry no information")
    flags_used = flags[used]
    z_train, z_test = codes[train], codes[test]
    score = np.zeros((codes.shape[1], int(used.sum())))
    cont = np.flatnonzero(~flags_used)
    if cont.size:
        score[:, cont] = squared_correlation(z_train, factors[train][:, used][:, cont])
    disc = np.flatnonzero(flags_used)
    if disc.size:
        labels = factor_labels(factors[:, used][:, disc])
        for j in range(codes.shape[1]):
            score[j, disc] = accuracies(z_train[:, j], labels[train], z_test[:, j], labels[test], C=svc_c)
    return MetricResult(
        metric="sap",
        scores={"sap.score": float(np.mean(top_two_gap(score)))},
        settings={
            "random_state": random_state,
            "n_train": n_train,
            "n_test": n_test,
            "svc_c": svc_c,
            "discrete": flags.tolist(),
        },
        matrices={"score": score, "factor_index": np.flatnonzero(used)},
        definition_version="1",
        warnings=notes,
    )
