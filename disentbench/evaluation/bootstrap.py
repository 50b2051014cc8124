"""Bootstrap confidence intervals of a record's scores over the evaluated points.

Method: the nonparametric percentile bootstrap (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*,
ch. 6 and 13). The code table's n rows (factor classes and codes together) are resampled B times uniformly with
replacement (a predictor metric's within its train/test split, below); every metric is recomputed on each
resample with the evaluation's own settings (preset and ``random_state`` = the evaluation seed, so each replicate
is the same function of its data as the point estimate); the interval of a score at level 1 − α is the α/2 and
1 − α/2 quantiles of its B replicates (``numpy.quantile``, linear interpolation). The interval describes how the
score would move with another sample of n grid points; it says nothing of the variation across training seeds.

The percentile interval does not correct bias (Efron & Tibshirani 1993, ch. 10 and 14): a resample is to
the sample what the sample is to the population, so an estimator's bias repeats in the replicates and the
interval sits off the point estimate by about that bias. Plug-in mutual information is the case in point: the MI of
independent binned variables is biased upward by about (bins − 1)(values − 1)/2N, so MIG's second-best MI is too
high and its replicates lie below its point estimate. The record's ``bias`` (mean of the replicates − the point
estimate, the bootstrap's estimate of the estimator's bias) says how far.

Randomness: resample b is drawn by ``numpy.random.default_rng(SeedSequence([seed, STREAM, b]))``, a generator of
its own that no metric shares, so resample b is the same whatever B or the metric selection (metrics with the
same split share it), and the point estimates (computed before, from their own generators) cannot move.

What row resampling does to each family:

* information metrics (histogram MI: MIG, MIG-sup, JEMMIG, DCIMIG, modularity, InfoMEC; Spearman, MCC) are plug-in
  statistics of the resample: the textbook case.
* predictor metrics (DCI, SAP, explicitness, informativeness: those with ``n_train`` and ``n_test`` settings) split
  their rows into train and test rows by the first draw of their ``random_state`` generator
  (:func:`predictor_split`). Their resamples keep that split (:func:`split_resample_rows`): the positions of the
  sample's train rows get a draw with replacement from its train rows, those of its test rows a draw from its test
  rows, so the metric's own split of the resample puts resampled train rows in train and resampled test rows in
  test (the bootstrap of a two-sample statistic: Efron & Tibshirani 1993, sec. 8.3). Resampling the whole table
  instead lets a row drawn twice fall on both sides, and a predictor that memorises rows then scores higher on a
  resample's test split than on the sample's: the interval of DCI's informativeness (GBT) sat entirely above its
  point estimate that way. What is left is the ordinary bias of a resample: its train split holds about 63 %
  distinct rows, so training scores read high (duplicates are memorised) and test scores a little low (less to
  learn from); ``bias`` says how much.
* interventional metrics (FactorVAE, BetaVAE, IRS) group rows by factor value and draw within a group with
  replacement (:class:`disentbench.metrics._groups.FactorGroups`); on a resample they draw from the resample's
  groups, i.e. from the empirical conditional distribution the bootstrap puts in place of the population (the
  plug-in principle). Group sizes vary from resample to resample (multinomially), and a value held by few rows
  may be missing from a resample (a factor left with one value is skipped, as on any table). IRS divides by a
  maximum (``max |z − E z|``), a statistic for which the bootstrap is known to be unreliable (Bickel & Freedman
  1981): its interval is the roughest.

A metric that raises on a resample (a check that the sample passed and a resample fails) is counted in
``failed`` and its interval comes from the other resamples (null when fewer than two succeeded); nothing stops
the evaluation.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

#: the interval method recorded in ``bootstrap.method``
METHOD = "percentile"
#: the resampling recorded in ``bootstrap.resampling``: rows, and a predictor metric's rows within its split
RESAMPLING = "rows-within-split"
#: the bootstrap's key in its SeedSequence (ASCII "boot"): keeps its generators apart from the metrics'
STREAM = 0x626F6F74


@dataclass
class BootstrapResult:
    """Intervals per score key (``[low, high]``, ``None`` for an end that could not be computed) and the record's
    ``bootstrap`` block: settings, resamples per metric, bias per key, failures, first error per failing metric,
    seconds, and the replicates (per key, resample b's score at position b; ``None`` where it failed), from which
    the interval of a mean of records that share the resamples is computed (:func:`mean_replicates`)."""

    intervals: dict[str, list[float | None]]
    resamples: int
    level: float
    seed: int
    metrics: dict[str, int]
    bias: dict[str, float | None] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    replicates: dict[str, list[float | None]] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """The record's ``bootstrap`` block (JSON-ready)."""
        return {
            "method": METHOD, "resampling": RESAMPLING, "resamples": self.resamples, "level": self.level,
            "seed": self.seed, "metrics": dict(self.metrics), "excluded": list(self.excluded), "bias": dict(self.bias),
            "failed": dict(self.failed),
            "errors": dict(self.errors), "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "elapsed_s": round(self.elapsed_s, 3),
            "replicates": {k: list(v) for k, v in self.replicates.items()},
        }

    def warnings(self) -> list[str]:
        """One line per metric that failed on some resamples."""
        return [f"bootstrap: {name} failed on {n} of {self.metrics[name]} resamples (first: {self.errors[name]})"
                for name, n in self.failed.items() if n]


def check_settings(resamples: int, level: float) -> None:
    """One-line ``ValueError`` for a negative or non-integer number of resamples or a level outside (0, 1)."""
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 0:
        raise ValueError(f"bootstrap resamples must be an integer >= 0 (0 = off), got {resamples!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap level must be in (0, 1), got {level!r}")


def resample_plan(metrics: Sequence[str], resamples: int, limits: Mapping[str, int]) -> dict[str, int]:
    """Resamples per metric: ``resamples``, capped by ``limits[metric]`` where the preset limits it (0: none)."""
    return {name: min(resamples, limits.get(name, resamples)) for name in metrics}


def resample_rows(n_rows: int, seed: int, index: int) -> np.ndarray:
    """Row indices of resample ``index``: ``n_rows`` draws with replacement from its own generator."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), STREAM, int(index)]))
    return rng.integers(0, n_rows, size=n_rows)


def split_resample_rows(n_rows: int, split: tuple[np.ndarray, np.ndarray], seed: int, index: int) -> np.ndarray:
    """Row indices of resample ``index`` that keep ``split`` = (train rows, test rows): position ``train[i]`` gets a
    draw with replacement from ``train``, position ``test[i]`` one from ``test``, other positions their own row."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), STREAM, int(index)]))
    rows = np.arange(n_rows)
    for part in split:
        rows[part] = part[rng.integers(0, len(part), size=len(part))]
    return rows


def predictor_split(name: str, n_rows: int, preset: str, seed: int,
                    overrides: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The (train, test) rows that metric ``name`` uses on ``n_rows`` rows under ``preset`` (then ``overrides``) and
    ``random_state`` = ``seed`` (the first draw of its generator), or None for a metric without ``n_train`` and
    ``n_test`` settings."""
    from disentbench.metrics import get_metric
    from disentbench.metrics._validation import rng_from, train_test_indices

    settings = get_metric(name).resolved_settings(preset, overrides)
    if not {"n_train", "n_test"} <= settings.keys():
        return None
    return train_test_indices(n_rows, settings["n_train"], settings["n_test"], rng_from(seed), metric=name)


def _finite(values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def replicate_bias(values: Sequence[float], point: float) -> float | None:
    """Mean of the replicates minus the point estimate; ``None`` without a finite replicate."""
    values = _finite(values)
    return float(values.mean() - point) if values.size else None


def percentile_interval(values: Sequence[float], level: float) -> list[float | None]:
    """The (1 − level)/2 and (1 + level)/2 quantiles of ``values``; ``[None, None]`` with fewer than two."""
    values = _finite(values)
    if values.size < 2:
        return [None, None]
    low, high = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return [float(low), float(high)]


def _replicate(factors, codes, name: str, preset: str, seed: int, discrete, overrides) -> dict[str, float]:
    """One metric's scores on one resample (its warnings silenced: the point estimate already reported them)."""
    from disentbench.metrics import compute_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_metrics(factors, codes, [name], preset=preset, random_state=seed, discrete=discrete,
                               overrides={name: overrides} if overrides else None)[name].scores


def bootstrap(
    factors: np.ndarray,
    codes: np.ndarray,
    point: Mapping[str, Mapping[str, float]],
    *,
    resamples: int,
    level: float,
    seed: int,
    preset: str,
    limits: Mapping[str, int] | None = None,
    discrete=None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    excluded: Sequence[str] = (),
) -> BootstrapResult:
    """Percentile-bootstrap intervals of the scores in ``point`` (metric -> its point estimates, score key ->
    value) with ``resamples`` resamples per metric, capped by ``limits`` (see the module docstring); ``preset``,
    ``discrete`` and ``overrides`` (metric -> settings) are those the point estimates were computed with.
    Resample b is shared by every metric with more than b resamples and the same split. ``excluded``: other score
    keys of the record left without an interval; the keys of metrics capped at 0 join them."""
    check_settings(resamples, level)
    start = time.perf_counter()
    factors, codes = np.asarray(factors), np.asarray(codes)
    plan = resample_plan(list(point), resamples, limits or {})
    active = {name: b for name, b in plan.items() if b > 0}
    skipped = [key for name, b in plan.items() if b == 0 for key in point[name]]
    estimates = {key: value for name in active for key, value in point[name].items()}
    values: dict[str, list[float | None]] = {key: [] for key in estimates}
    result = BootstrapResult({}, resamples, float(level), int(seed), active, failed=dict.fromkeys(active, 0),
                             seconds=dict.fromkeys(active, 0.0), excluded=[*excluded, *skipped])
    overrides = overrides or {}
    splits = {name: predictor_split(name, len(codes), preset, seed, overrides.get(name)) for name in active}
    for index in range(max(active.values(), default=0)):
        whole = resample_rows(len(codes), seed, index)
        for name in (n for n, b in active.items() if b > index):
            tick = time.perf_counter()
            rows = whole if splits[name] is None else split_resample_rows(len(codes), splits[name], seed, index)
            try:
                scores = _replicate(factors[rows], codes[rows], name, preset, seed, discrete, overrides.get(name))
            except Exception as exc:  # a metric failing on a resample is counted, not fatal
                result.failed[name] += 1
                result.errors.setdefault(name, f"{type(exc).__name__}: {exc}".splitlines()[0])
                scores = {}
            result.seconds[name] += time.perf_counter() - tick
            for key in point[name]:
                values[key].append(float(scores[key]) if key in scores else None)
    result.replicates = values
    finite = {key: [v for v in replicates if v is not None] for key, replicates in values.items()}
    result.intervals = {key: percentile_interval(v, level) for key, v in finite.items()}
    result.bias = {key: replicate_bias(v, estimates[key]) for key, v in finite.items()}
    result.elapsed_s = time.perf_counter() - start
    return result


def mean_replicates(blocks: Sequence[Mapping[str, Any]], point: Mapping[str, float]) -> BootstrapResult | None:
    """The bootstrap of a mean of records from their ``bootstrap`` blocks, or None when they do not share resamples.

    Records evaluated on the same points with the same seed (and the same resampling) draw the same rows in resample
    b per metric (``resample_rows``; ``split_resample_rows`` for a predictor metric), so the mean over records of
    their b-th replicates is the b-th replicate of the mean score under joint row resampling; the interval of
    ``point[key]`` (the mean) is the percentile interval of those means. Replicate b of a key is missing where any
    record's is (failed, or fewer resamples); keys some record lacks are left out.
    """
    shared = {tuple(b.get(k) for k in ("method", "resampling", "resamples", "level", "seed")) for b in blocks}
    if not blocks or len(shared) != 1 or any("replicates" not in b for b in blocks):
        return None
    first = blocks[0]
    metrics = {name: min(b["metrics"].get(name, 0) for b in blocks) for name in first["metrics"]}
    result = BootstrapResult({}, first["resamples"], first["level"], first["seed"],
                             {name: n for name, n in metrics.items() if n > 0})
    for key in (k for k in first["replicates"] if k in point and all(k in b["replicates"] for b in blocks)):
        columns = [b["replicates"][key] for b in blocks]
        length = min(len(c) for c in columns)
        means = [None if any(c[i] is None for c in columns) else float(np.mean([c[i] for c in columns]))
                 for i in range(length)]
        result.replicates[key] = means
        finite = [v for v in means if v is not None]
        result.intervals[key] = percentile_interval(finite, result.level)
        result.bias[key] = replicate_bias(finite, point[key])
    return result
