"""Orderings as tests: is model A above model B on a metric, per dataset, over seeds?

:func:`compare` tests, per dataset (and preset) of a leaderboard frame (:func:`~disentbench.leaderboard.load`, one
row per record, the seeds as rows), whether A's mean is better than B's in the metric's declared direction
(:func:`disentbench.metrics.registry.score_meaning`; a metric without a direction orders nothing and is an error).

The test is Welch's unequal-variance t-test, one-sided in the better direction. With ``s`` the sign of the metric
(+1 higher is better, −1 lower is better), sample means m and sample variances v (ddof = 1)::

    Δ  = s · (m_A − m_B)                                   the difference in the better direction
    t  = Δ / √(v_A/n_A + v_B/n_B)                          Welch's t
    df = (v_A/n_A + v_B/n_B)² / ((v_A/n_A)²/(n_A−1) + (v_B/n_B)²/(n_B−1))    Welch–Satterthwaite
    p  = P(T_df ≥ t)      "A above B";      p_reverse = P(T_df ≤ t)      "B above A"

**Why Welch:** the spreads of two models are not equal. A collapsed or unstable run (one seed that trains, one that
does not) has a spread many times that of a stable model, and Student's pooled-variance test would then hand the
stable model's small spread to the unstable one and claim orders that the seeds do not support.

**Why not a permutation test:** at n = 3 seeds per model there are C(6, 3) = 20 ways to split the six scores into
two groups of three, so the smallest one-sided p a permutation test can give is 1/20 = 0.05: it can never resolve
an order at α = 0.05, however far apart the scores lie. The t-test assumes roughly normal scores over seeds in
exchange for an answer at the tiers' three seeds.

The effect size is Hedges' g, Cohen's d on the pooled standard deviation with the small-sample bias correction::

    s_pooled = √(((n_A−1)·v_A + (n_B−1)·v_B) / (n_A + n_B − 2))
    g = J · Δ / s_pooled,      J = 1 − 3 / (4·(n_A + n_B) − 9)

Verdicts: ``"A above B"`` when p < α, ``"B above A"`` when p_reverse < α, else ``"not resolved at n = N"`` (N the
smaller group). A group with fewer than two seeds has no variance and admits no test (``"no test: ..."``). When both
groups have zero spread, t is ±∞ (p = 0 for the better one: every seed of one lies above every seed of the other,
the limit of the test as the spreads shrink) or undefined when the means are equal too (not resolved).

:func:`seeds_needed` answers the planning question: how many seeds per model resolve a gap of a given size with
given spreads (the power of the one-sided Welch test from the noncentral t distribution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from disentbench.leaderboard.frames import metric_columns
from disentbench.leaderboard.table import LeaderboardError
from disentbench.metrics.registry import score_meaning

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Comparison:
    """The one-sided Welch test of "``model_a`` above ``model_b``" on ``metric`` over the seeds of one dataset.

    ``difference`` is Δ = sign · (mean_a − mean_b): positive when A is better. ``std_*`` are sample standard
    deviations (NaN for one seed); ``t``, ``df``, ``p``, ``p_reverse`` and ``hedges_g`` are NaN without a test."""

    dataset: str
    preset: str
    metric: str
    model_a: str
    model_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    difference: float
    t: float
    df: float
    p: float
    p_reverse: float
    hedges_g: float
    alpha: float
    verdict: str

    @property
    def resolved(self) -> bool:
        """Whether the test orders the two models at ``alpha``."""
        return self.p < self.alpha or self.p_reverse < self.alpha

    def line(self) -> str:
        """One line: both groups, the difference, t, df, one-sided p, Hedges' g and the verdict."""
        direction = score_meaning(self.metric).direction

        def group(model: str, n: int, mean: float, std: float) -> str:
            spread = f" ± {std:.3f}" if n > 1 else ""
            return f"{model} {mean:.3f}{spread} (n={n})" if n else f"{model} (n=0)"

        head = (f"{self.dataset} ({self.preset}) {self.metric}: "
                f"{group(self.model_a, self.n_a, self.mean_a, self.std_a)} vs "
                f"{group(self.model_b, self.n_b, self.mean_b, self.std_b)}")
        if min(self.n_a, self.n_b) < 2:
            return f"{head}: {self.verdict}"
        if math.isnan(self.df):
            return (f"{head}: difference {self.difference:+.3f} ({direction} is better), no spread in either model "
                    f"-> {self.verdict}")
        return (f"{head}: difference {self.difference:+.3f} ({direction} is better), Welch t = {self.t:.2f}, "
                f"df = {self.df:.1f}, one-sided p = {self.p:.3g}, Hedges' g = {self.hedges_g:.2f} -> {self.verdict}")


def direction_sign(metric: str) -> int:
    """+1 (higher is better) or −1 (lower is better) from the metric registry; a metric without a direction (a
    count, a diagnostic) or an unknown one is a :class:`LeaderboardError`."""
    try:
        sign = score_meaning(metric).sign
    except KeyError as exc:
        raise LeaderboardError(exc.args[0]) from None
    if sign == 0:
        raise LeaderboardError(f"metric {metric!r} has no better direction (a count or a diagnostic): "
                               "it orders nothing")
    return sign


def hedges_g(a: np.ndarray, b: np.ndarray, sign: int = 1) -> float:
    """Hedges' g of ``a`` over ``b`` in the direction ``sign``: J · sign · (mean_a − mean_b) / s_pooled with
    s_pooled = √(((n_a−1)·v_a + (n_b−1)·v_b) / (n_a+n_b−2)) and J = 1 − 3/(4·(n_a+n_b) − 9). ±inf for separated
    groups without spread, NaN for equal ones."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n_a, n_b = a.size, b.size
    pooled = math.sqrt(((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2))
    correction = 1 - 3 / (4 * (n_a + n_b) - 9)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(correction * np.float64(sign * (a.mean() - b.mean())) / pooled)


def welch_test(a, b, *, sign: int = 1, alpha: float = 0.05, dataset: str = "", preset: str = "", metric: str = "",
               model_a: str = "A", model_b: str = "B") -> Comparison:
    """The one-sided Welch test of ``a`` above ``b`` in the direction ``sign`` (see the module docstring)."""
    from scipy import stats

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n_a, n_b = int(a.size), int(b.size)
    nan = float("nan")
    mean_a, mean_b = (float(x.mean()) if x.size else nan for x in (a, b))
    std_a, std_b = (float(x.std(ddof=1)) if x.size > 1 else nan for x in (a, b))
    difference = sign * (mean_a - mean_b)
    base = dict(dataset=dataset, preset=preset, metric=metric, model_a=model_a, model_b=model_b, n_a=n_a, n_b=n_b,
                mean_a=mean_a, mean_b=mean_b, std_a=std_a, std_b=std_b, difference=difference, alpha=alpha)
    if min(n_a, n_b) < 2:
        short = ", ".join(f"{m} has {n} seed{'s' * (n != 1)}" for m, n in ((model_a, n_a), (model_b, n_b)) if n < 2)
        return Comparison(**base, t=nan, df=nan, p=nan, p_reverse=nan, hedges_g=nan,
                          verdict=f"no test: {short} (a test needs 2 or more per model)")
    if std_a == 0 and std_b == 0:
        t = math.copysign(math.inf, difference) if difference else nan
        p, p_reverse = (nan, nan) if not difference else ((0.0, 1.0) if difference > 0 else (1.0, 0.0))
        df = nan
    else:
        result = stats.ttest_ind(sign * a, sign * b, equal_var=False, alternative="greater")
        t, df, p = float(result.statistic), float(result.df), float(result.pvalue)
        p_reverse = float(stats.t.sf(-t, df))
    if p < alpha:
        verdict = f"{model_a} above {model_b}"
    elif p_reverse < alpha:
        verdict = f"{model_b} above {model_a}"
    else:
        verdict = f"not resolved at n = {min(n_a, n_b)}"
    return Comparison(**base, t=t, df=df, p=p, p_reverse=p_reverse, hedges_g=hedges_g(a, b, sign), verdict=verdict)


def compare(frame: "pd.DataFrame", model_a: str, model_b: str, metric: str, dataset: str | None = None,
            alpha: float = 0.05) -> list[Comparison]:
    """Is ``model_a`` above ``model_b`` on ``metric``? One :class:`Comparison` per (dataset, preset) of ``frame``
    that holds either model (only ``dataset`` when given), in sorted order; seeds without the metric are left
    out. An unknown model, dataset or metric, or a metric without a direction, is a :class:`LeaderboardError`."""
    sign = direction_sign(metric)
    if metric not in metric_columns(frame):
        raise LeaderboardError(f"metric {metric!r} is not a column of this table")
    models = sorted(set(frame["model"]))
    for model in (model_a, model_b):
        if model not in models:
            raise LeaderboardError(f"model {model!r} has no row in this table; models: {', '.join(models)}")
    if dataset is not None and dataset not in set(frame["dataset"]):
        raise LeaderboardError(f"dataset {dataset!r} has no row in this table; datasets: "
                               f"{', '.join(sorted(set(frame['dataset'])))}")
    rows = frame[frame["model"].isin([model_a, model_b]) & frame[metric].notna()]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    out = []
    for (name, preset), group in rows.groupby(["dataset", "preset"], sort=True):
        values = {m: group.loc[group["model"] == m, metric].to_numpy(dtype=np.float64) for m in (model_a, model_b)}
        out.append(welch_test(values[model_a], values[model_b], sign=sign, alpha=alpha, dataset=str(name),
                              preset=str(preset), metric=metric, model_a=model_a, model_b=model_b))
    if not out:
        raise LeaderboardError(f"neither {model_a!r} nor {model_b!r} has a {metric!r} value"
                               + (f" on {dataset!r}" if dataset else ""))
    return out


def welch_power(std_a: float, std_b: float, gap: float, n: int, alpha: float = 0.05) -> float:
    """Power of the one-sided Welch test at α with ``n`` seeds per model when the true difference in the better
    direction is ``gap`` and the true spreads are ``std_a``, ``std_b``: P(T' ≥ t_{1−α, df}) with T' noncentral t
    of noncentrality δ = gap / √((σ_A² + σ_B²)/n) and the Welch–Satterthwaite
    df = (n−1)·(σ_A² + σ_B²)² / (σ_A⁴ + σ_B⁴)."""
    from scipy import stats

    var = std_a**2 + std_b**2
    if var == 0:
        return 1.0 if gap > 0 else 0.0
    df = (n - 1) * var**2 / (std_a**4 + std_b**4)
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, gap / math.sqrt(var / n)))


def seeds_needed(std_a: float, std_b: float, gap: float, alpha: float = 0.05, power: float = 0.8,
                 max_n: int = 1000) -> int | None:
    """The fewest seeds per model (n ≥ 2) at which the one-sided Welch test resolves a true ``gap`` (in the better
    direction) with probability ``power`` (:func:`welch_power`); None when the gap is not positive (no number of
    seeds orders it) or more than ``max_n`` seeds would be needed."""
    if not gap > 0:
        return None
    return next((n for n in range(2, max_n + 1) if welch_power(std_a, std_b, gap, n, alpha) >= power), None)
