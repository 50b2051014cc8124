"""JEMMIG: joint-entropy-minus-mutual-information gap (Do & Tran 2020)."""

from __future__ import annotations

import math

import numpy as np

from disentbench.metrics._info import information_statistics
from disentbench.metrics._result import MetricResult
from disentbench.metrics.mig import top_two
from disentbench.metrics.registry import UNIT, ScoreMeaning, register_metric


@register_metric(
    "jemmig",
    family="information",
    properties=("compactness", "explicitness"),
    description="JEMMIG (Do & Tran 2020): 1 - normalised [H(z*, v) - I(z*; v) + I(z°; v)], averaged over factors",
    scores={"jemmig.score": UNIT, "jemmig.unnormalised": ScoreMeaning("lower", 0.0, math.inf)},
)
def jemmig(
    factors,
    codes,
    *,
    discrete=None,
    random_state=0,
    n_samples: int | None = 10_000,
    n_bins: int = 20,
    discretizer: str = "histogram",
) -> MetricResult:
    """JEMMIG (Do & Tran 2020, "Theory and evaluation metrics for learning disentangled representations", sec. 4.2).

    For factor v_k let z* and z° be the codes of largest and second-largest MI with v_k:
    ``JEMMIG_k = H(z*, v_k) - I(z*; v_k) + I(z°; v_k)``, normalised by its upper bound
    ``H(v_k) + log(n_bins)`` (the paper's normalisation; entropies in nats, so log base e).
    Reported as ``jemmig.score = 1 - mean_k JEMMIG_k / (H(v_k) + log n_bins)`` so that, like every other
    score here, higher is better and the range is [0, 1]; ``jemmig.unnormalised`` is mean_k JEMMIG_k in nats.
    Joint entropies come from the same plug-in histograms as MIG: H(z, v) = H(z) + H(v) - I(z; v).

    Deviations: the paper's public implementations (e.g. Carbonneau et al.'s) rescale codes to [0, 1]
    and use 10 bins in bits, and also bin continuous factors; here codes use the reference MIG
    discretiser (20 equal-width bins) and factors are classes unless flagged continuous.
    """
    stats = information_statistics(
        factors, codes, metric="jemmig", discrete=discrete, random_state=random_state,
        n_samples=n_samples, n_bins=n_bins, discretizer=discretizer,
    )
    keep = stats.factor_mask
    mi = stats.mutual_info[:, keep]
    h_v = stats.factor_entropy[keep]
    best = np.argmax(mi, axis=0)
    first, second = top_two(mi, axis=0)
    joint = stats.code_entropy[best] + h_v - first
    raw = joint - first + second
    normalised = raw / (h_v + np.log(n_bins))
    per_factor = np.zeros(len(keep))
    per_factor[keep] = 1.0 - normalised
    return MetricResult(
        metric="jemmig",
        scores={"jemmig.score": float(np.mean(1.0 - normalised)), "jemmig.unnormalised": float(np.mean(raw))},
        settings=dict(stats.settings),
        matrices={"mutual_info": stats.mutual_info, "factor_entropy": stats.factor_entropy,
                  "code_entropy": stats.code_entropy, "score_per_factor": per_factor, "factor_scored": keep},
        definition_version="1",
        warnings=stats.notes,
    )
