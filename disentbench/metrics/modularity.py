"""Modularity and explicitness (Ridgeway & Mozer 2018)."""

from __future__ import annotations

import warnings

import numpy as np

from disentbench.metrics._info import factor_labels_for, information_statistics, warn_constant_codes
from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import (
    check_discrete,
    check_factors_codes,
    informative_factors,
    note,
    rng_from,
    train_test_indices,
)
from disentbench.metrics.registry import UNIT, register_metric


def modularity_from_mi(mutual_info: np.ndarray) -> np.ndarray:
    """Per-code modularity ``1 - δ_j`` from an (n_codes, n_factors) MI matrix (0 where a code's max MI is 0).

    ``δ_j = sum_{k != k*} m_jk² / (m_jk*² (K - 1))`` with k* the factor of largest MI; with a single
    factor (K = 1) every informative code is perfectly modular.
    """
    squared = np.square(mutual_info)
    top = squared.max(axis=1)
    n_factors = squared.shape[1]
    per_code = np.zeros(squared.shape[0])
    informative = top > 0
    if n_factors == 1:
        per_code[informative] = 1.0
        return per_code
    delta = (squared[informative].sum(axis=1) - top[informative]) / (top[informative] * (n_factors - 1))
    per_code[informative] = 1.0 - delta
    return per_code


@register_metric(
    "modularity",
    family="information",
    properties=("modularity",),
    description="Modularity (Ridgeway & Mozer 2018): each code's MI concentrated on one factor",
    scores={"modularity.score": UNIT},
)
def modularity(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_samples: int | None = 10_000,
    n_bins: int = 20,
    discretizer: str = "histogram",
) -> MetricResult:
    """Modularity (Ridgeway & Mozer 2018, "Learning deep disentangled embeddings with the F-statistic loss", sec. 3).

    ``modularity = mean_j (1 - δ_j)``, ``δ_j = sum_{k != k*(j)} m_jk² / (m_{jk*}² (K - 1))`` with m the
    plug-in MI matrix (20 equal-width code bins, 10,000 rows, as disentanglement_lib's
    ``modularity_explicitness``); a code whose largest MI is 0 (e.g. a constant, collapsed code)
    scores 0, as in the reference, and counts in the mean. Range [0, 1] (δ_j <= 1).

    Deviations: rows are a seeded subsample of the arrays; single-valued factors are skipped with a
    warning (K counts scored factors); with K = 1 informative codes score 1 (the reference divides by 0).
    """
    stats = information_statistics(
        factors, codes, metric="modularity", discrete=discrete, random_state=random_state,
        n_samples=n_samples, n_bins=n_bins, discretizer=discretizer,
    )
    per_code = modularity_from_mi(stats.mutual_info[:, stats.factor_mask])
    return MetricResult(
        metric="modularity",
        scores={"modularity.score": float(per_code.mean())},
        settings=dict(stats.settings),
        matrices={"mutual_info": stats.mutual_info, "modularity_per_code": per_code},
        definition_version="1",
        warnings=stats.notes,
    )


def _macro_ovr_auc(labels: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean one-vs-rest ROC-AUC over classes with both positive and negative rows (0.5 if none)."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for c, label in enumerate(classes):
        positive = labels == label
        if positive.all() or not positive.any():
            continue
        aucs.append(roc_auc_score(positive, proba[:, c]))
    return float(np.mean(aucs)) if aucs else 0.5


@register_metric(
    "explicitness",
    family="predictor",
    properties=("explicitness",),
    description="Explicitness (Ridgeway & Mozer 2018): mean one-vs-rest ROC-AUC of a logistic regression on all codes",
    scores={"explicitness.test": UNIT, "explicitness.train": UNIT},
)
def explicitness(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_train: int = 10_000,
    n_test: int = 5_000,
    C: float = 1.0,
    max_iter: int = 100,
    n_bins: int = 20,
) -> MetricResult:
    """Explicitness (Ridgeway & Mozer 2018, sec. 3): how well a linear classifier on the whole code reads each factor.

    Per factor: ``LogisticRegression(C=1, lbfgs, max_iter=100)`` (scikit-learn defaults, as the
    reference) fitted on ``n_train`` rows of codes standardised with the training mean and std;
    score = mean over classes of the one-vs-rest ROC-AUC of ``predict_proba``; explicitness = mean over
    factors. ``explicitness.test`` on ``n_test`` held-out rows (the reference's headline value),
    ``explicitness.train`` on the training rows. Range [0, 1]; 0.5 is chance.

    Deviations from disentanglement_lib: train and test rows are a seeded disjoint split of the arrays;
    constant codes are dropped before standardising (the reference divides by a zero std and crashes);
    with no non-constant code every factor scores 0.5 (chance); classes absent from the evaluated rows
    are left out of the average (the reference binarises the test labels on their own classes, which
    misaligns columns when a class is missing); single-valued factors are skipped; continuous factors
    (``discrete`` False) are binned into ``n_bins`` equal-width classes.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    factors, codes = check_factors_codes(factors, codes)
    flags = check_discrete(discrete, factors, metric="explicitness")
    train, test = train_test_indices(factors.shape[0], n_train, n_test, rng_from(random_state), metric="explicitness")
    notes: list[str] = []
    keep = informative_factors(factors[train], "explicitness", notes)
    constant = warn_constant_codes(codes[train], "explicitness", notes)
    labels = factor_labels_for(factors, flags, n_bins, "histogram")
    x = codes[:, ~constant]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    x = (x - mean) / std
    auc_train = np.full(factors.shape[1], 0.5)
    auc_test = np.full(factors.shape[1], 0.5)
    converged = True
    if x.shape[1] == 0:
        note(notes, "explicitness: no non-constant code; every factor scores chance (0.5)")
    else:
        for k in np.flatnonzero(keep):
            clf = LogisticRegression(C=C, max_iter=max_iter)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                with threadpool_limits(1):  # small problems: one BLAS thread is faster, no oversubscription
                    clf.fit(x[train], labels[train, k])
            converged &= not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            auc_train[k] = _macro_ovr_auc(labels[train, k], clf.predict_proba(x[train]), clf.classes_)
            auc_test[k] = _macro_ovr_auc(labels[test, k], clf.predict_proba(x[test]), clf.classes_)
    if not converged:
        note(notes, f"explicitness: logistic regression stopped at max_iter={max_iter} before converging "
                    "(as in the reference)")
    return MetricResult(
        metric="explicitness",
        scores={"explicitness.test": float(auc_test[keep].mean()), "explicitness.train": float(auc_train[keep].mean())},
        settings={"n_train": n_train, "n_test": n_test, "C": C, "max_iter": max_iter, "n_bins": n_bins,
                  "random_state": random_state},
        matrices={"auc_test_per_factor": auc_test, "auc_train_per_factor": auc_train, "factor_scored": keep},
        definition_version="1",
        warnings=notes,
    )
