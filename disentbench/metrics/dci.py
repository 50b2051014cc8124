"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018, ICLR, sec. 2-3).

From an importance matrix R (n_codes J, n_factors K), R_jk >= 0 the importance of code j for factor k:

* disentanglement  D = sum_j rho_j (1 - H_K(P_j.)),  P_jk = R_jk / sum_k R_jk,  rho_j = sum_k R_jk / sum_jk R_jk
* completeness     C = sum_k rho~_k (1 - H_J(P~_.k)),  P~_jk = R_jk / sum_j R_jk,  rho~_k = sum_j R_jk / sum R
* informativeness  mean over factors of the predictor's accuracy (train and test split)

H_K is the entropy in base K with 1e-11 added to every entry before normalising (as disentanglement_lib);
an all-zero R gets uniform weights (score 0); with a single factor (code) every code (factor) is trivially
disentangled (complete): score 1.
"""

from __future__ import annotations

import math

import numpy as np

from disentbench.metrics._importance import fit_factor_predictors
from disentbench.metrics._result import MetricResult
from disentbench.metrics.registry import UNIT, ScoreMeaning, register_metric

EPS = 1e-11


def _one_minus_entropy(p: np.ndarray) -> np.ndarray:
    """1 - H_b(row) for each row of ``p`` (non-negative), base b = number of columns, 1e-11 smoothing."""
    n = p.shape[1]
    if n == 1:
        return np.ones(p.shape[0])
    q = p + EPS
    q = q / q.sum(axis=1, keepdims=True)
    return 1.0 + (q * np.log(q)).sum(axis=1) / np.log(n)


def _weights(r: np.ndarray, axis: int) -> np.ndarray:
    total = r.sum()
    if total == 0:
        r = np.ones_like(r)
        total = r.sum()
    return r.sum(axis=axis) / total


def disentanglement(importance: np.ndarray) -> float:
    """D from an importance matrix (n_codes, n_factors)."""
    importance = np.asarray(importance, dtype=np.float64)
    return float(np.sum(_one_minus_entropy(importance) * _weights(importance, axis=1)))


def completeness(importance: np.ndarray) -> float:
    """C from an importance matrix (n_codes, n_factors)."""
    importance = np.asarray(importance, dtype=np.float64)
    return float(np.sum(_one_minus_entropy(importance.T) * _weights(importance, axis=0)))


@register_metric(
    "dci",
    family="predictor",
    properties=("modularity", "compactness", "explicitness"),
    description="DCI disentanglement/completeness/informativeness from per-factor predictor importances",
    scores={
        "dci.disentanglement": UNIT,
        "dci.completeness": UNIT,
        # mean accuracy (discrete factors) or R² (continuous: below 0 when worse than the mean); the train fit is a
        # diagnostic (boosted trees fit even noise)
        "dci.informativeness_train": ScoreMeaning(None, -math.inf, 1.0),
        "dci.informativeness_test": ScoreMeaning("higher", -math.inf, 1.0),
    },
    presets={
        "fast": {"estimator": "hist_gbt"},
        "dci_hist_gbt": {"estimator": "hist_gbt"},
        "dci_lasso": {"estimator": "lasso"},
        "dci_rf": {"estimator": "random_forest"},
    },
)
def dci(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_train: int = 10_000,
    n_test: int = 5_000,
    estimator: str = "gbt",
    lasso_alpha: float = 0.02,
    n_jobs: int | None = None,
) -> MetricResult:
    """DCI scores (Eastwood & Williams 2018) of ``codes`` w.r.t. ``factors``.

    Parameters
    ----------
    factors, codes : (n_samples, n_factors), (n_samples, n_codes); needs n_train + n_test rows.
    discrete : per-factor flags (None: all discrete, the reference); continuous factors use regressors and
        score R^2 for informativeness.
    estimator : ``gbt`` (reference: default GradientBoostingClassifier), ``hist_gbt`` (fast), ``random_forest``,
        ``lasso`` (see :mod:`disentbench.metrics._importance`).
    n_jobs : parallel worker processes over factors (joblib; None: one per factor); never changes the scores.

    Scores ``dci.disentanglement``, ``dci.completeness``, ``dci.informativeness_train``,
    ``dci.informativeness_test``; matrices ``importance`` (n_codes, n_used_factors), per-factor train/test
    scores, ``fit_cpu_seconds`` (CPU time of each factor's fit) and ``factor_index`` (the factors used).
    """
    fit, flags, used, notes = fit_factor_predictors(
        "dci", factors, codes, discrete=discrete, random_state=random_state, n_train=n_train, n_test=n_test,
        estimator=estimator, n_jobs=n_jobs, lasso_alpha=lasso_alpha,
    )
    scores = {
        "dci.disentanglement": disentanglement(fit.importance),
        "dci.completeness": completeness(fit.importance),
        "dci.informativeness_train": float(np.mean(fit.train_score)),
        "dci.informativeness_test": float(np.mean(fit.test_score)),
    }
    return MetricResult(
        metric="dci",
        scores=scores,
        settings={
            "random_state": random_state,
            "n_train": n_train,
            "n_test": n_test,
            "estimator": estimator,
            "lasso_alpha": lasso_alpha,
            "n_jobs": n_jobs,
            "discrete": flags.tolist(),
        },
        matrices={
            "importance": fit.importance,
            "informativeness_train_per_factor": fit.train_score,
            "informativeness_test_per_factor": fit.test_score,
            "fit_cpu_seconds": fit.cpu_seconds,
            "factor_index": np.flatnonzero(used),
        },
        definition_version="1",
        warnings=notes,
    )
