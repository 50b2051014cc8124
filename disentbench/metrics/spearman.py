"""Spearman matching of codes to factors (seed 004, appendix I) and the mean correlation coefficient (MCC)."""

from __future__ import annotations

import numpy as np

from disentbench.metrics._info import warn_constant_codes
from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import check_factors_codes, informative_factors, note, rng_from, subsample
from disentbench.metrics.registry import COUNT, UNIT, ScoreMeaning, register_metric


def spearman_matrix(factors: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman ρ (n_codes, n_factors) and two-sided p-values, all pairs at once.

    Average ranks (ties share their mean rank, as ``scipy.stats.spearmanr``), centred and scaled to
    unit norm; ρ is one matrix product. p-values from ``t = ρ sqrt((n-2)/(1-ρ²))`` with n-2 degrees of
    freedom (``spearmanr``'s test). A constant column has ρ = 0 and p = 1.
    """
    from scipy.stats import rankdata, t as student_t

    n = codes.shape[0]

    def unit(x: np.ndarray) -> np.ndarray:
        r = rankdata(x, axis=0)
        r = r - r.mean(axis=0)
        norm = np.linalg.norm(r, axis=0)
        return np.divide(r, norm, out=np.zeros_like(r), where=norm > 0)

    rho = np.clip(unit(codes).T @ unit(factors), -1.0, 1.0)
    dof = n - 2
    if dof < 1:
        return rho, np.ones_like(rho)
    with np.errstate(divide="ignore"):
        t_stat = np.abs(rho) * np.sqrt(dof / np.maximum(1.0 - rho**2, 0.0))
    p_value = np.minimum(2.0 * student_t.sf(t_stat, dof), 1.0)
    p_value[rho == 0] = 1.0
    return rho, p_value


def _prepare(factors, codes, metric: str, random_state, n_samples):
    factors, codes = check_factors_codes(factors, codes, min_samples=3)
    if n_samples is not None and n_samples < 3:
        raise ValueError(f"{metric}: n_samples must be at least 3 (or None for all rows), got {n_samples}")
    rows = subsample(factors.shape[0], n_samples, rng_from(random_state))
    factors, codes = factors[rows], codes[rows]
    notes: list[str] = []
    keep = informative_factors(factors, metric, notes)
    warn_constant_codes(codes, metric, notes)
    rho = np.zeros((codes.shape[1], factors.shape[1]))
    p_value = np.ones_like(rho)
    rho[:, keep], p_value[:, keep] = spearman_matrix(factors[:, keep], codes)
    return rho, p_value, keep, notes, len(rows)


@register_metric(
    "spearman",
    family="information",
    properties=("compactness", "explicitness"),
    description="Spearman matching (seed 004, app. I): factors retrieved by the codes' significant rank correlations",
    scores={
        "spearman.n_factors_retrieved": COUNT,
        "spearman.n_codes_matched": COUNT,
        "spearman.mean": UNIT,
        "spearman.std": ScoreMeaning(None),
        "spearman.min": UNIT,
        "spearman.max": UNIT,
    },
)
def spearman(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_samples: int | None = 10_000,
    alpha: float = 0.05,
    bonferroni: bool = True,
) -> MetricResult:
    """Spearman matching ("On the relationship between disentanglement and multi-task learning", appendix I).

    For every code z_j and factor v_k the Spearman correlation ρ_jk; code j is matched to the factor
    with the largest |ρ_jk| among those significant at level ``alpha`` (two-sided t-test of
    ``spearmanr``; with ``bonferroni`` the level is ``alpha / (n_codes · n_factors)`` over all pairs
    tested). Scores: ``spearman.n_factors_retrieved`` (distinct factors matched by at least one code),
    ``spearman.n_codes_matched``, and mean / std / min / max of |ρ| over the matched codes (0 with a
    warning when no code is matched). The sign of ρ is ignored since a code's orientation is arbitrary.

    Choices the appendix leaves open (documented in docs/metrics.md): |ρ| rather than signed ρ, the
    Bonferroni correction, and a seeded subsample of ``n_samples`` rows. ``discrete`` is accepted for the
    common signature; ranks need no discretisation.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"spearman: alpha must be in (0, 1), got {alpha}")
    rho, p_value, keep, notes, n_rows = _prepare(factors, codes, "spearman", random_state, n_samples)
    level = alpha / (rho.shape[0] * int(keep.sum())) if bonferroni else alpha
    strength = np.where((p_value < level) & keep[None, :], np.abs(rho), -1.0)
    match = np.where(strength.max(axis=1) >= 0, np.argmax(strength, axis=1), -1)
    matched = match >= 0
    values = np.abs(rho[np.flatnonzero(matched), match[matched]])
    if values.size == 0:
        note(notes, "spearman: no code is significantly correlated with any factor; correlation statistics are 0")
        stats = {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0}
    else:
        stats = {"mean": values.mean(), "std": values.std(), "min": values.min(), "max": values.max()}
    scores = {
        "spearman.n_factors_retrieved": float(len(np.unique(match[matched]))),
        "spearman.n_codes_matched": float(matched.sum()),
        **{f"spearman.{key}": float(value) for key, value in stats.items()},
    }
    return MetricResult(
        metric="spearman",
        scores=scores,
        settings={"n_samples": n_samples, "alpha": alpha, "bonferroni": bonferroni,
                  "random_state": random_state, "n_rows_used": n_rows},
        matrices={"spearman": rho, "p_value": p_value, "matched_factor": match},
        definition_version="1",
        warnings=notes,
    )


@register_metric(
    "mcc",
    family="information",
    properties=("modularity", "compactness"),
    description="Mean correlation coefficient: one-to-one (Hungarian) matching of codes to factors on |Spearman ρ|",
    scores={"mcc.score": UNIT},
)
def mcc(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_samples: int | None = 10_000,
) -> MetricResult:
    """Mean correlation coefficient (MCC) as used in the nonlinear-ICA literature (e.g. Khemakhem et al. 2020).

    A one-to-one assignment of codes to factors maximising the total |ρ_jk| (Spearman, as in
    :func:`spearman`), found with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``);
    ``mcc.score = sum of assigned |ρ| / K`` over the K scored factors, so a factor left without a code
    (fewer codes than factors) counts 0. Range [0, 1]. The ICA literature often uses Pearson
    correlation; Spearman makes the score invariant to monotone transforms of codes and factors.
    """
    from scipy.optimize import linear_sum_assignment

    rho, _, keep, notes, n_rows = _prepare(factors, codes, "mcc", random_state, n_samples)
    strength = np.abs(rho[:, keep])
    code_idx, factor_idx = linear_sum_assignment(strength, maximize=True)
    assignment = np.full(len(keep), -1)
    assignment[np.flatnonzero(keep)[factor_idx]] = code_idx
    return MetricResult(
        metric="mcc",
        scores={"mcc.score": float(strength[code_idx, factor_idx].sum() / strength.shape[1])},
        settings={"n_samples": n_samples, "random_state": random_state, "n_rows_used": n_rows},
        matrices={"spearman": rho, "assigned_code": assignment},
        definition_version="1",
        warnings=notes,
    )
