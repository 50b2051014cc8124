"""Registry of metrics: name -> function, family, measured property, defaults, presets and score meanings.

Metric modules register themselves with :func:`register_metric`; :func:`compute_metrics` runs a
selection on one ``(factors, codes)`` pair.

Every score key a metric returns (``mig.score``, ``dci.completeness``, ...) is declared with its
:class:`ScoreMeaning`: which way is better and the range its values lie in. Scores of evaluation protocols
outside the metric engine (``multitask.rmse``) are declared here too, with :func:`register_score`; leaderboards,
study tables and tests read :func:`score_meaning` instead of listing keys.

A *preset* is a named set of setting overrides. ``reference`` (the default) reproduces
disentanglement_lib's ``unsupervised_study_v1`` settings; other presets (``fast``, ``dci_lasso``,
...) are declared by the metrics they change. A metric that does not declare a preset runs its
defaults under it.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import InputSizeWarning, preflight

FAMILIES = ("information", "predictor", "intervention")
PROPERTIES = ("modularity", "compactness", "explicitness")
REFERENCE_PRESET = "reference"
DIRECTIONS = ("higher", "lower", None)


@dataclass(frozen=True)
class ScoreMeaning:
    """What a score key means: ``direction`` ``"higher"`` or ``"lower"`` is better (None: a count or a
    diagnostic that ranks nothing); its values lie in [``low``, ``high``] (``math.inf`` for an open end);
    ``integer`` for counts."""

    direction: str | None
    low: float = 0.0
    high: float = 1.0
    integer: bool = False

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not self.low < self.high:
            raise ValueError(f"empty range [{self.low}, {self.high}]")

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is better, 0 without a direction."""
        return {"higher": 1, "lower": -1, None: 0}[self.direction]

    def contains(self, value: float, tol: float = 1e-9) -> bool:
        """Whether ``value`` lies in the range (within ``tol``) and, for counts, is a whole number."""
        return self.low - tol <= value <= self.high + tol and (not self.integer or float(value).is_integer())

    def describe(self) -> str:
        """E.g. ``higher is better, [0, 1]`` or ``count, [0, ∞)``."""
        low = "(-∞" if self.low == -math.inf else f"[{self.low:g}"
        high = "∞)" if self.high == math.inf else f"{self.high:g}]"
        what = "count" if self.integer else (f"{self.direction} is better" if self.direction else "no direction")
        return f"{what}, {low}, {high}"


#: a score in [0, 1], higher is better (most disentanglement scores)
UNIT = ScoreMeaning("higher")
#: a non-negative whole number (e.g. active dimensions); no direction
COUNT = ScoreMeaning(None, 0.0, math.inf, integer=True)

@dataclass(frozen=True)
class MetricInfo:
    """What the registry knows of one metric."""

    name: str
    func: Callable[..., MetricResult]
    family: str
    properties: tuple[str, ...]
    description: str
    in_default: bool = True
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    scores: dict[str, ScoreMeaning] = field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Any]:
        """Keyword defaults of the metric function (its reference settings)."""
        sig = inspect.signature(self.func)
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }

    def settings_for(self, preset: str) -> dict[str, Any]:
        """Overrides of the defaults that ``preset`` applies to this metric."""
        return dict(self.presets.get(preset, {}))

    def resolved_settings(self, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every setting the metric runs with: its defaults, then ``preset``'s, then ``overrides``."""
        return {**self.defaults, **self.settings_for(preset), **(overrides or {})}


_REGISTRY: dict[str, MetricInfo] = {}
_SCORES: dict[str, ScoreMeaning] = {}


def register_score(key: str, meaning: ScoreMeaning) -> None:
    """Declare the meaning of a score key; a key declared twice must mean the same."""
    if _SCORES.setdefault(key, meaning) != meaning:
        raise ValueError(f"score {key!r} declared twice with different meanings")


def score_meaning(key: str) -> ScoreMeaning:
    """The declared :class:`ScoreMeaning` of a score key; ``KeyError`` naming the key when it has none."""
    _ensure_loaded()
    try:
        return _SCORES[key]
    except KeyError:
        raise KeyError(f"score {key!r} has no declared meaning (declare it with register_metric(scores=...) "
                       "or register_score)") from None


def list_scores() -> dict[str, ScoreMeaning]:
    """Every declared score key and its meaning."""
    _ensure_loaded()
    return dict(sorted(_SCORES.items()))


#: the multi-task protocol of seed 004 Table 1 (disentbench.evaluation.protocols): mean test RMSE of task heads
register_score("multitask.rmse", ScoreMeaning("lower", 0.0, math.inf))


def register_metric(
    name: str,
    *,
    family: str,
    properties: Sequence[str],
    description: str,
    scores: dict[str, ScoreMeaning],
    in_default: bool = True,
    presets: dict[str, dict[str, Any]] | None = None,
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    """Decorator adding a metric function to the registry; ``scores`` declares every key it returns
    (``<name>.<part>``) with its meaning."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    unknown = set(properties) - set(PROPERTIES)
    if unknown:
        raise ValueError(f"unknown properties {sorted(unknown)}; choose from {PROPERTIES}")
    foreign = [key for key in scores if not key.startswith(f"{name}.")]
    if not scores or foreign:
        raise ValueError(f"metric {name!r} must declare its score keys, each named {name}.<part>; got {list(scores)}")

    def decorator(func: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"metric {name!r} registered twice")
        _REGISTRY[name] = MetricInfo(
            name=name,
            func=func,
            family=family,
            properties=tuple(properties),
            description=description,
            in_default=in_default,
            presets=dict(presets or {}),
            scores=dict(scores),
        )
        for key, meaning in scores.items():
            register_score(key, meaning)
        return func

    return decorator


def _ensure_loaded() -> None:
    # Importing the package imports every metric module, which registers them.
    import disentbench.metrics  # noqa: F401


def get_metric(name: str) -> MetricInfo:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(_REGISTRY))}") from None


def list_metrics(*, family: str | None = None, prop: str | None = None, default_only: bool = False) -> list[MetricInfo]:
    """Registered metrics, optionally filtered by family, measured property, or default-suite membership."""
    _ensure_loaded()
    out = []
    for info in sorted(_REGISTRY.values(), key=lambda i: i.name):
        if family is not None and info.family != family:
            continue
        if prop is not None and prop not in info.properties:
            continue
        if default_only and not info.in_default:
            continue
        out.append(info)
    return out


def list_presets() -> list[str]:
    """Every preset name: ``reference`` plus those the metrics declare."""
    _ensure_loaded()
    names = {REFERENCE_PRESET}
    for info in _REGISTRY.values():
        names.update(info.presets)
    return sorted(names)


def resolve_selection(selection: str | Iterable[str]) -> list[str]:
    """Metric names for ``"default"``, ``"all"``, a comma-separated string or a list of names."""
    _ensure_loaded()
    if isinstance(selection, str):
        if selection == "default":
            return [i.name for i in list_metrics(default_only=True)]
        if selection == "all":
            return [i.name for i in list_metrics()]
        selection = [s.strip() for s in selection.split(",") if s.strip()]
    names = list(dict.fromkeys(selection))
    if not names:
        raise ValueError("no metrics selected")
    for name in names:
        get_metric(name)
    return names


def compute_metrics(
    factors,
    codes,
    metrics: str | Iterable[str] = "default",
    *,
    preset: str = REFERENCE_PRESET,
    random_state: int = 0,
    discrete=None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, MetricResult]:
    """Run a selection of metrics on one representation.

    Parameters
    ----------
    factors, codes : (n_samples, n_factors) and (n_samples, n_codes) arrays.
    metrics : ``"default"``, ``"all"``, comma-separated names, or a list of names.
    preset : settings preset applied to every metric that declares it.
    random_state : seed given to every metric (each derives its own generator from it).
    discrete : per-factor discrete flags (None: all discrete; non-integer factors must be flagged).
    overrides : per-metric setting overrides, applied after the preset.

    One pre-flight check over the whole selection runs first (:func:`~disentbench.metrics._validation.preflight`):
    bad arrays, unflagged non-integer factors and too few rows for any metric's train/test split are errors
    before anything is computed; a large memory estimate is an ``InputSizeWarning`` (a ``MetricWarning``).
    """
    names = resolve_selection(metrics)
    if preset not in list_presets():
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(list_presets())}")
    overrides = overrides or {}
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"overrides given for metrics not selected: {sorted(unknown)}")
    plan = {name: {**get_metric(name).settings_for(preset), **overrides.get(name, {})} for name in names}
    full = {name: get_metric(name).resolved_settings(preset, overrides.get(name)) for name in names}
    for message in preflight(factors, codes, discrete, full):
        warnings.warn(message, InputSizeWarning, stacklevel=2)
    results: dict[str, MetricResult] = {}
    for name, settings in plan.items():
        info = get_metric(name)
        start = time.perf_counter()
        result = info.func(factors, codes, discrete=discrete, random_state=random_state, **settings)
        result.elapsed_s = time.perf_counter() - start
        result.settings.setdefault("preset", preset)
        results[name] = result
    return results
