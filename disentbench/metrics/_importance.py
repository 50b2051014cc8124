"""Importance matrices for DCI: one predictor per factor, factors fitted in parallel.

``importance_matrix`` fits one estimator per factor on all codes and returns R (n_codes, n_factors),
R[j, k] = importance of code j for predicting factor k, plus each predictor's train and test score
(accuracy for discrete factors, R^2 = 1 - MSE / Var for continuous ones).

Estimators (``ESTIMATORS``):

``gbt``
    scikit-learn ``GradientBoostingClassifier()`` with its defaults (100 stages, depth 3), R = |feature_importances_|
    (mean impurity decrease).  The reference setting of disentanglement_lib (``compute_importance_gbt``).
``hist_gbt``
    ``HistGradientBoostingClassifier`` with the ``gbt`` shape — 100 iterations, learning rate 0.1, depth 3,
    ``min_samples_leaf=1``, no early stopping — on 255-bin histograms; sklearn exposes no
    ``feature_importances_`` for it, so R[j, k] = sum of the split gains (loss reduction) of every split node on
    code j over all fitted trees, normalised to sum 1.  The fast preset (measured agreement with ``gbt``:
    docs/metrics-predictors.md).
``random_forest``
    ``RandomForestClassifier()`` defaults (100 trees), R = feature_importances_.
``lasso``
    ``Lasso(alpha=lasso_alpha)`` (default 0.02) on standardised codes regressing the standardised factor value
    (Eastwood & Williams 2018, sec. 4); R = |coef_|.  For a discrete factor the prediction is rounded to the
    nearest observed value to score accuracy.

Continuous factors use the regressor counterparts (``GradientBoostingRegressor``, ...).

Each estimator gets its own seed drawn from ``random_state`` before any fitting, so results do not depend on
``n_jobs``; the reference draws from numpy's global RNG instead (run-to-run noise).  Every fit runs with
one BLAS/OpenMP thread (``threadpoolctl``): the parallelism is across factors.  By default every factor gets
its own worker process (``n_jobs=None``): the fits are independent and CPU-bound, so the operating system
balances them over the cores and the wall time approaches max(total / cores, longest fit); with one worker per
core instead, a multi-class factor (one tree per class and stage) left for last can double the wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from disentbench.metrics._validation import (
    check_discrete,
    check_factors_codes,
    constant_columns,
    factor_labels,
    note,
    rng_from,
    seed_for_sklearn,
    train_test_indices,
)

ESTIMATORS = ("gbt", "hist_gbt", "random_forest", "lasso")
# the gbt shape (100 stages of depth-3 trees, leaves down to 1 sample) on histograms: closest importances
HIST_GBT_PARAMS = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_depth": 3,
    "min_samples_leaf": 1,
    "early_stopping": False,
}


@dataclass
class ImportanceFit:
    """R (n_codes, n_factors), per-factor train/test scores and CPU seconds of the fitted predictors."""

    importance: np.ndarray
    train_score: np.ndarray
    test_score: np.ndarray
    cpu_seconds: np.ndarray


def importance_matrix(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    discrete: np.ndarray,
    estimator: str = "gbt",
    seeds: list[int],
    n_jobs: int | None = None,
    lasso_alpha: float = 0.02,
) -> ImportanceFit:
    """Fit one ``estimator`` per factor column of ``y_*`` on all codes ``x_*``, factors in parallel.

    ``y_*`` hold integer labels for discrete factors and raw values for continuous ones; ``seeds`` has one
    estimator seed per factor; ``n_jobs`` workers (joblib; None: one per factor).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown importance estimator {estimator!r}; choose from {ESTIMATORS}")
    n_factors = y_train.shape[1]
    # Longest fits first (multi-class boosting costs one tree per class and stage): shortest makespan.
    cost = [len(np.unique(y_train[:, k])) if discrete[k] else 1 for k in range(n_factors)]
    order = sorted(range(n_factors), key=lambda k: -cost[k])
    jobs = (
        delayed(_fit_one)(
            x_train, y_train[:, k], x_test, y_test[:, k], bool(discrete[k]), estimator, seeds[k], lasso_alpha
        )
        for k in order
    )
    fitted = Parallel(n_jobs=n_factors if n_jobs is None else n_jobs)(jobs)
    importance = np.zeros((x_train.shape[1], n_factors))
    train_score = np.zeros(n_factors)
    test_score = np.zeros(n_factors)
    cpu_seconds = np.zeros(n_factors)
    for k, (imp, tr, te, cpu) in zip(order, fitted):
        importance[:, k], train_score[k], test_score[k], cpu_seconds[k] = imp, tr, te, cpu
    return ImportanceFit(importance, train_score, test_score, cpu_seconds)


def _fit_one(*args):
    start = time.process_time()
    importance, train, test = _fit_scored(*args)
    return importance, train, test, time.process_time() - start


def _fit_scored(x_train, y_train, x_test, y_test, discrete, estimator, seed, lasso_alpha):
    with threadpool_limits(limits=1):
        if estimator == "lasso":
            return _fit_lasso(x_train, y_train, x_test, y_test, discrete, lasso_alpha)
        model = _make_tree_model(estimator, discrete, seed)
        model.fit(x_train, y_train)
        if estimator == "hist_gbt":
            importance = _hist_gain_importance(model, x_train.shape[1])
        else:
            importance = np.abs(model.feature_importances_)
        return importance, _score(model.predict(x_train), y_train, discrete), _score(
            model.predict(x_test), y_test, discrete
        )


def _make_tree_model(estimator, discrete, seed):
    from sklearn import ensemble

    if estimator == "gbt":
        cls = ensemble.GradientBoostingClassifier if discrete else ensemble.GradientBoostingRegressor
        return cls(random_state=seed)
    if estimator == "random_forest":
        cls = ensemble.RandomForestClassifier if discrete else ensemble.RandomForestRegressor
        return cls(random_state=seed)
    cls = ensemble.HistGradientBoostingClassifier if discrete else ensemble.HistGradientBoostingRegressor
    return cls(random_state=seed, **HIST_GBT_PARAMS)


def _hist_gain_importance(model, n_codes: int) -> np.ndarray:
    """Sum of split gains per feature over every tree of a fitted HistGradientBoosting model, normalised."""
    total = np.zeros(n_codes)
    for trees in model._predictors:
        for tree in trees:
            nodes = tree.nodes
            split = nodes["is_leaf"] == 0
            np.add.at(total, nodes["feature_idx"][split], np.maximum(nodes["gain"][split], 0.0))
    s = total.sum()
    return total / s if s > 0 else total


def _fit_lasso(x_train, y_train, x_test, y_test, discrete, alpha):
    from sklearn.linear_model import Lasso

    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0  # constant codes stay zero after centring: zero coefficient
    y = y_train.astype(np.float64)
    y_mean, y_std = y.mean(), y.std() or 1.0
    model = Lasso(alpha=alpha).fit((x_train - mean) / std, (y - y_mean) / y_std)

    def predict(x):
        pred = model.predict((x - mean) / std) * y_std + y_mean
        if discrete:  # nearest observed label
            values = np.unique(y_train)
            pred = values[np.abs(pred[:, None] - values[None, :]).argmin(axis=1)]
        return pred

    return np.abs(model.coef_), _score(predict(x_train), y_train, discrete), _score(predict(x_test), y_test, discrete)


def _score(pred: np.ndarray, y: np.ndarray, discrete: bool) -> float:
    """Accuracy (discrete) or R^2 = 1 - MSE / Var(y) (continuous; 0 when y is constant)."""
    if discrete:
        return float(np.mean(pred == y))
    var = float(np.var(y))
    return 1.0 - float(np.mean((pred - y) ** 2)) / var if var > 0 else 0.0


def factor_targets(factors: np.ndarray, discrete: np.ndarray) -> np.ndarray:
    """Prediction targets: integer labels 0..K-1 for discrete factors, raw values for continuous ones."""
    targets = factors.copy()
    if discrete.any():
        targets[:, discrete] = factor_labels(factors[:, discrete])
    return targets


def usable_factors(y_train: np.ndarray, metric: str, notes: list[str]) -> np.ndarray:
    """Mask of factors with more than one value in the training split (others skipped with a warning)."""
    single = constant_columns(y_train)
    for k in np.flatnonzero(single):
        note(notes, f"{metric}: factor {k} has a single value in the training split and is skipped")
    if single.all():
        raise ValueError(f"{metric}: every factor has a single value in the training split: nothing to predict")
    return ~single


def fit_factor_predictors(
    metric: str,
    factors,
    codes,
    *,
    discrete,
    random_state,
    n_train: int,
    n_test: int,
    estimator: str,
    n_jobs: int | None,
    lasso_alpha: float = 0.02,
) -> tuple[ImportanceFit, np.ndarray, np.ndarray, list[str]]:
    """The shared start of predictor metrics: validate, split, fit one ``estimator`` per factor on all codes.

    Returns ``(fit, discrete_flags, used_factors_mask, notes)``; constant codes get zero importance with a
    warning, single-valued factors are skipped with a warning.
    """
    factors, codes = check_factors_codes(factors, codes)
    flags = check_discrete(discrete, factors, metric=metric)
    if estimator not in ESTIMATORS:
        raise ValueError(f"{metric}: unknown estimator {estimator!r}; choose from {ESTIMATORS}")
    notes: list[str] = []
    rng = rng_from(random_state)
    train, test = train_test_indices(len(codes), n_train, n_test, rng, metric=metric)
    targets = factor_targets(factors, flags)
    used = usable_factors(targets[train], metric, notes)
    seeds = [seed_for_sklearn(rng) for _ in range(factors.shape[1])]
    constant = constant_columns(codes[train])
    if constant.any():
        note(notes, f"{metric}: constant codes {np.flatnonzero(constant).tolist()} carry no information "
                    "(zero importance)")
    fit = importance_matrix(
        codes[train],
        targets[train][:, used],
        codes[test],
        targets[test][:, used],
        discrete=flags[used],
        estimator=estimator,
        seeds=[s for s, u in zip(seeds, used) if u],
        n_jobs=n_jobs,
        lasso_alpha=lasso_alpha,
    )
    fit.importance[constant] = 0.0
    return fit, flags, used, notes
