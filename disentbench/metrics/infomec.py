"""InfoMEC: InfoM (modularity), InfoE (explicitness), InfoC (compactness) — Hsu et al. 2023."""

from __future__ import annotations

import warnings

import numpy as np

from disentbench.metrics._info import factor_labels_for, information_statistics
from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import check_discrete, note
from disentbench.metrics.registry import UNIT, register_metric


def concentration(nmi: np.ndarray, axis: int) -> np.ndarray:
    """``(max / sum - 1/n) / (1 - 1/n)`` along ``axis`` (n entries); 0 where the sum is 0; 1 if n == 1 and sum > 0."""
    n = nmi.shape[axis]
    total = nmi.sum(axis=axis)
    out = np.zeros(total.shape)
    has = total > 0
    if n == 1:
        out[has] = 1.0
        return out
    ratio = nmi.max(axis=axis)[has] / total[has]
    out[has] = (ratio - 1.0 / n) / (1.0 - 1.0 / n)
    return out


def infoe_per_factor(codes: np.ndarray, labels: np.ndarray, max_iter: int) -> tuple[float, bool]:
    """Normalised predictive information ``(log K - CE) / log K`` of an unpenalised, class-balanced
    multinomial logistic regression from standardised codes to one factor (K classes); and whether it converged."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits
    from sklearn.metrics import log_loss

    n_classes = len(np.unique(labels))
    std = codes.std(axis=0)
    x = (codes - codes.mean(axis=0)) / np.where(std > 0, std, 1.0)
    clf = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        with threadpool_limits(1):  # small problems: one BLAS thread is faster and avoids oversubscription
            clf.fit(x, labels)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    cross_entropy = log_loss(labels, clf.predict_proba(x), labels=clf.classes_)
    marginal = np.log(n_classes)
    return float(np.clip((marginal - cross_entropy) / marginal, 0.0, 1.0)), converged


@register_metric(
    "infomec",
    family="information",
    properties=("modularity", "compactness", "explicitness"),
    description="InfoMEC (Hsu et al. 2023): InfoM / InfoC from normalised MI, InfoE from a logistic regression",
    scores={"infomec.infom": UNIT, "infomec.infoc": UNIT, "infomec.infoe": UNIT},
)
def infomec(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_samples: int | None = 10_000,
    n_bins: int = 20,
    discretizer: str = "histogram",
    active_fraction: float = 0.05,
    max_iter: int = 100,
) -> MetricResult:
    """InfoMEC (Hsu, Dorrell, Whittington, Wu & Finn 2023, "Disentanglement via latent quantization", sec. 5).

    ``NMI_jk = I(z_j; v_k) / H(v_k)``. Codes whose range exceeds ``active_fraction`` (1/20) of the
    largest code range are *active* (the authors' pruning); over the L active codes and K factors:

    - ``InfoM = (mean_j max_k NMI_jk / sum_k NMI_jk - 1/K) / (1 - 1/K)`` (modularity),
    - ``InfoC = (mean_k max_j NMI_jk / sum_j NMI_jk - 1/L) / (1 - 1/L)`` (compactness),
    - ``InfoE = mean_k (log K_k - CE_k) / log K_k`` (explicitness), CE_k the training cross-entropy of an
      unpenalised, class-balanced multinomial logistic regression from all standardised codes to v_k.

    Deviations from the authors' code: the MI of continuous codes uses the same plug-in histogram estimator
    as MIG (20 equal-width bins) instead of scikit-learn's k-NN estimator (which is stochastic and slow); the
    null cross-entropy is log K_k in closed form (the optimum of their intercept-only balanced fit); a code
    or factor with zero total NMI contributes 0 instead of NaN; K = 1 or L = 1 gives 1 for informative
    rows instead of a division by zero; InfoE is clipped to [0, 1]; rows are a seeded subsample of
    ``n_samples``; the current scikit-learn API (``C=inf``, no ``multi_class``).
    """
    stats = information_statistics(
        factors, codes, metric="infomec", discrete=discrete, random_state=random_state,
        n_samples=n_samples, n_bins=n_bins, discretizer=discretizer,
    )
    if not 0.0 <= active_fraction < 1.0:
        raise ValueError(f"infomec: active_fraction must be in [0, 1), got {active_fraction}")
    keep = stats.factor_mask
    notes = stats.notes
    nmi = np.zeros_like(stats.mutual_info)
    nmi[:, keep] = stats.mutual_info[:, keep] / stats.factor_entropy[keep]
    ranges = np.ptp(stats.codes, axis=0)
    active = (ranges > active_fraction * ranges.max()) & ~stats.constant_codes
    pruned = nmi[np.ix_(active, keep)]
    if not active.any():
        note(notes, "infomec: no active code; InfoM, InfoC and InfoE are 0")
        infom = infoc = infoe = 0.0
    else:
        if (~active & ~stats.constant_codes).any():
            note(notes, f"infomec: codes {np.flatnonzero(~active & ~stats.constant_codes).tolist()} have a range "
                        f"below {active_fraction} of the largest and are pruned from InfoM/InfoC")
        infom = float(concentration(pruned, axis=1).mean())
        infoc = float(concentration(pruned, axis=0).mean())
        flags = check_discrete(discrete, stats.factors, metric="infomec")
        labels = factor_labels_for(stats.factors, flags, n_bins, discretizer)
        fits = [infoe_per_factor(stats.codes, labels[:, k], max_iter) for k in np.flatnonzero(keep)]
        infoe = float(np.mean([value for value, _ in fits]))
        if not all(converged for _, converged in fits):
            note(notes, f"infomec: InfoE logistic regression stopped at max_iter={max_iter} (as the authors' code)")
    return MetricResult(
        metric="infomec",
        scores={"infomec.infom": infom, "infomec.infoc": infoc, "infomec.infoe": infoe},
        settings={**stats.settings, "active_fraction": active_fraction, "max_iter": max_iter},
        matrices={"nmi": nmi, "code_active": active},
        definition_version="1",
        warnings=notes,
    )
