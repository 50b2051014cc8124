"""BetaVAE score (Higgins et al. 2017, ICLR, sec. 3) from a code table.

One training point: a factor k uniformly at random; ``batch_size`` pairs of rows (a, b) where a is a uniformly
random row and b a random row sharing a's value of factor k (the reference samples two factor batches and copies
factor k from the first to the second; a table covering the factor grid uniformly makes this exact); the feature
is mean_pairs |z_a - z_b| and the label is k. A ``LogisticRegression`` (scikit-learn defaults, current API)
trained on ``n_train`` points is scored on ``n_eval`` fresh points (accuracy).
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from disentbench.metrics._groups import FactorGroups
from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import (
    check_factors_codes,
    check_grouping_factors,
    constant_columns,
    factor_labels,
    informative_factors,
    note,
    rng_from,
    seed_for_sklearn,
)
from disentbench.metrics.registry import UNIT, register_metric

_CHUNK = 2048


def _points(codes, labels, groups, factor_ids, n_points, batch_size, rng):
    """Features (n_points, n_codes) and labels (index into ``factor_ids``)."""
    which = rng.integers(len(factor_ids), size=n_points)
    features = np.empty((n_points, codes.shape[1]))
    for lo in range(0, n_points, _CHUNK):
        k = factor_ids[which[lo : lo + _CHUNK]][:, None]
        first = rng.integers(len(codes), size=(len(k), batch_size))
        second = groups.draw(k, labels[first, k], rng)
        features[lo : lo + _CHUNK] = np.abs(codes[first] - codes[second]).mean(axis=1)
    return features, which


@register_metric(
    "beta_vae",
    family="intervention",
    properties=("modularity",),
    description="BetaVAE score: linear classification of the fixed factor from mean |z1 - z2|",
    scores={"beta_vae.train_accuracy": UNIT, "beta_vae.eval_accuracy": UNIT},
)
def beta_vae(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
) -> MetricResult:
    """BetaVAE score (Higgins et al. 2017) with disentanglement_lib's settings.

    Factors are grouped by value; continuous factors are refused. Scores ``beta_vae.train_accuracy``,
    ``beta_vae.eval_accuracy``; matrices ``coef`` (n_used_factors, n_codes) and ``factor_index``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    factors, codes = check_factors_codes(factors, codes)
    check_grouping_factors(discrete, factors, metric="beta_vae")
    if batch_size < 1 or n_train < 1 or n_eval < 1:
        raise ValueError(f"beta_vae: batch_size, n_train and n_eval must be positive, got {batch_size}, "
                         f"{n_train}, {n_eval}")
    notes: list[str] = []
    rng = rng_from(random_state)
    used = informative_factors(factors, "beta_vae", notes)
    constant = constant_columns(codes)
    if constant.any():
        note(notes, f"beta_vae: constant codes {np.flatnonzero(constant).tolist()} carry no information (feature 0)")
    factor_ids = np.flatnonzero(used)
    labels = factor_labels(factors)
    groups = FactorGroups(labels)
    x_train, y_train = _points(codes, labels, groups, factor_ids, n_train, batch_size, rng)
    x_eval, y_eval = _points(codes, labels, groups, factor_ids, n_eval, batch_size, rng)
    model = LogisticRegression(random_state=seed_for_sklearn(rng))
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=1):
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_train, y_train)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        note(notes, "beta_vae: LogisticRegression did not converge in its default 100 iterations (as the reference)")
    scores = {
        "beta_vae.train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "beta_vae.eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }
    return MetricResult(
        metric="beta_vae",
        scores=scores,
        settings={"random_state": random_state, "batch_size": batch_size, "n_train": n_train, "n_eval": n_eval},
        matrices={"coef": model.coef_, "factor_index": factor_ids},
        definition_version="1",
        warnings=notes,
    )
