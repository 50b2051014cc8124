"""Informativeness: how well all codes together predict each factor on held-out rows
(Eastwood & Williams 2018, sec. 2, "informativeness"; Carbonneau et al. 2022, "explicitness").

One predictor per factor on all codes, fitted on ``n_train`` rows, scored on ``n_test`` other rows:
discrete factor -> accuracy; continuous factor -> normalised error NMSE = MSE / Var(v) (0 perfect, 1 no better
than the mean). ``informativeness.score`` = mean over factors of accuracy or 1 - NMSE.

Default predictor: ``hist_gbt`` (HistGradientBoosting in the gbt shape: non-linear, seconds on 10,000 rows);
the DCI estimators ``gbt``, ``random_forest`` and ``lasso`` can be chosen (see ``_importance``).
Not in the default suite: DCI already reports informativeness with the reference predictor.
"""

from __future__ import annotations

import math

import numpy as np

from disentbench.metrics._importance import fit_factor_predictors
from disentbench.metrics._result import MetricResult
from disentbench.metrics.registry import UNIT, ScoreMeaning, register_metric


@register_metric(
    "informativeness",
    family="predictor",
    properties=("explicitness",),
    description="held-out accuracy (discrete) / normalised error (continuous) of all codes predicting each factor",
    scores={
        # mean over factors of accuracy (discrete) or 1 - NMSE (continuous: below 0 when worse than the mean)
        "informativeness.score": ScoreMeaning("higher", -math.inf, 1.0),
        "informativeness.accuracy": UNIT,
        "informativeness.nmse": ScoreMeaning("lower", 0.0, math.inf),
    },
    in_default=False,
)
def informativeness(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_train: int = 10_000,
    n_test: int = 5_000,
    estimator: str = "hist_gbt",
    n_jobs: int | None = None,
) -> MetricResult:
    """Per-factor held-out predictability of ``factors`` from ``codes``.

    Scores ``informativeness.score`` and, when such factors exist, ``informativeness.accuracy`` (mean over
    discrete factors) and ``informativeness.nmse`` (mean over continuous factors); matrices ``test_score``,
    ``train_score`` (per used factor) and ``factor_index``.
    """
    fit, flags, used, notes = fit_factor_predictors(
        "informativeness", factors, codes, discrete=discrete, random_state=random_state, n_train=n_train,
        n_test=n_test, estimator=estimator, n_jobs=n_jobs,
    )
    disc = flags[used]
    scores = {"informativeness.score": float(np.mean(fit.test_score))}
    if disc.any():
        scores["informativeness.accuracy"] = float(np.mean(fit.test_score[disc]))
    if (~disc).any():
        scores["informativeness.nmse"] = float(np.mean(1.0 - fit.test_score[~disc]))
    return MetricResult(
        metric="informativeness",
        scores=scores,
        settings={
            "random_state": random_state,
            "n_train": n_train,
            "n_test": n_test,
            "estimator": estimator,
            "n_jobs": n_jobs,
            "discrete": flags.tolist(),
        },
        matrices={"test_score": fit.test_score, "train_score": fit.train_score, "factor_index": np.flatnonzero(used)},
        definition_version="1",
        warnings=notes,
    )
