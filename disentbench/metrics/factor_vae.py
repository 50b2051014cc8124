"""FactorVAE score (Kim & Mnih 2018, ICML, sec. 4) from a code table.

1. Global variance s^2_d of each code over ``n_variance`` rows (ddof=1); codes with s_d < ``prune_threshold``
   are inactive (0.05 in disentanglement_lib's unsupervised study; its code default is 0).
2. One vote: a factor k uniformly at random, a value v of k uniformly at random, a batch of ``batch_size`` rows
   with factor k == v (drawn with replacement, like the reference's i.i.d. factor draws); the vote is
   (k, argmin_d over active codes of Var_batch(z_d) / s^2_d) (batch variance ddof=1).
3. Majority-vote classifier: each active code predicts the factor that voted for it most (ties: lowest factor).
   Score = share of ``n_eval`` fresh votes it classifies correctly (``n_train`` votes fit it).

From arrays the fixed-factor batches are rows sharing factor k's value: a table covering the factor grid
uniformly reproduces the reference's sampling exactly. Groups smaller than the batch make batches repeat rows
(the score is then optimistic): warned about. No active code: every score 0, with a warning (the reference
returns 0 too). ``factor_vae.num_active_dims`` counts the active codes (the reference reports the code size).
"""

from __future__ import annotations

import numpy as np

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
    subsample,
)
from disentbench.metrics.registry import COUNT, UNIT, register_metric

_CHUNK = 2048


def _votes(codes, groups, factor_ids, n_votes, batch_size, inv_var, rng) -> np.ndarray:
    """(n_used_factors, n_active) vote counts of ``n_votes`` fixed-factor batches."""
    n_used, n_active = len(factor_ids), codes.shape[1]
    which = rng.integers(n_used, size=n_votes)
    k = factor_ids[which]
    v = (rng.random(n_votes) * groups.n_values[k]).astype(np.int64)
    argmin = np.empty(n_votes, dtype=np.int64)
    for lo in range(0, n_votes, _CHUNK):
        rows = groups.draw(k[lo : lo + _CHUNK], v[lo : lo + _CHUNK], rng, size=batch_size)
        local = np.var(codes[rows], axis=1, ddof=1)  # (chunk, n_active)
        argmin[lo : lo + _CHUNK] = np.argmin(local * inv_var, axis=1)
    return np.bincount(which * n_active + argmin, minlength=n_used * n_active).reshape(n_used, n_active)


def _accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    total = votes.sum()
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / total) if total else 0.0


@register_metric(
    "factor_vae",
    family="intervention",
    properties=("modularity", "compactness"),
    description="FactorVAE score: majority vote of the least-varying code under a fixed factor",
    scores={"factor_vae.train_accuracy": UNIT, "factor_vae.eval_accuracy": UNIT, "factor_vae.num_active_dims": COUNT},
)
def factor_vae(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    batch_size: int = 64,
    n_train: int = 10_000,
    n_eval: int = 5_000,
    n_variance: int = 10_000,
    prune_threshold: float = 0.05,
) -> MetricResult:
    """FactorVAE score (Kim & Mnih 2018) with disentanglement_lib's unsupervised-study settings.

    Factors are grouped by value (every factor value is a group); continuous factors are refused.
    Scores ``factor_vae.train_accuracy``, ``factor_vae.eval_accuracy``, ``factor_vae.num_active_dims``;
    matrices ``train_votes`` and ``eval_votes`` (n_used_factors, n_active), ``global_variance``,
    ``active`` (bool per code) and ``factor_index``.
    """
    factors, codes = check_factors_codes(factors, codes)
    check_grouping_factors(discrete, factors, metric="factor_vae")
    if batch_size < 2 or n_train < 1 or n_eval < 1 or n_variance < 2:
        raise ValueError(
            f"factor_vae: need batch_size >= 2, n_train >= 1, n_eval >= 1, n_variance >= 2; got "
            f"{batch_size}, {n_train}, {n_eval}, {n_variance}"
        )
    notes: list[str] = []
    settings = {
        "random_state": random_state,
        "batch_size": batch_size,
        "n_train": n_train,
        "n_eval": n_eval,
        "n_variance": n_variance,
        "prune_threshold": prune_threshold,
    }
    rng = rng_from(random_state)
    used = informative_factors(factors, "factor_vae", notes)
    constant = constant_columns(codes)
    if constant.any():
        note(notes, f"factor_vae: constant codes {np.flatnonzero(constant).tolist()} carry no information (pruned)")
    global_var = np.var(codes[subsample(len(codes), n_variance, rng)], axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    active &= global_var > 0  # a constant code has no variance to compare against
    matrices = {"global_variance": global_var, "active": active, "factor_index": np.flatnonzero(used)}
    if not active.any():
        note(notes, f"factor_vae: every code has std < {prune_threshold} (all pruned): scores are 0")
        zero = {f"factor_vae.{key}": 0.0 for key in ("train_accuracy", "eval_accuracy", "num_active_dims")}
        return MetricResult("factor_vae", zero, settings, matrices, definition_version="1", warnings=notes)
    labels = factor_labels(factors)
    groups = FactorGroups(labels)
    factor_ids = np.flatnonzero(used)
    smallest = min(int(groups.group_sizes(k).min()) for k in factor_ids)
    if smallest < batch_size:
        note(
            notes,
            f"factor_vae: some factor values have only {smallest} rows (< batch_size {batch_size}); batches "
            "repeat rows, which biases the score upward (pass a table covering the factor grid)",
        )
    z = codes[:, active]
    inv_var = 1.0 / global_var[active]
    train_votes = _votes(z, groups, factor_ids, n_train, batch_size, inv_var, rng)
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = _votes(z, groups, factor_ids, n_eval, batch_size, inv_var, rng)
    scores = {
        "factor_vae.train_accuracy": _accuracy(train_votes, classifier),
        "factor_vae.eval_accuracy": _accuracy(eval_votes, classifier),
        "factor_vae.num_active_dims": float(active.sum()),
    }
    matrices.update(train_votes=train_votes, eval_votes=eval_votes)
    return MetricResult("factor_vae", scores, settings, matrices, definition_version="1", warnings=notes)
