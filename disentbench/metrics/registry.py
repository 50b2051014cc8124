"""Registry of metrics: name -> function, family, measured property, defaults and presets.

Metric modules register themselves with :func:`register_metric`; :func:`compute_metrics` runs a
selection on one ``(factors, codes)`` pair.

A *preset* is a named set of setting overrides. ``reference`` (the default) reproduces
disentanglement_lib's ``unsupervised_study_v1`` settings; other presets (``fast``, ``dci_lasso``,
...) are declared by the metrics they change. A metric that does not declare a preset runs its
defaults under it.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from disentbench.metrics._result import MetricResult

FAMILIES = ("information", "predictor", "intervention")
PROPERTIES = ("modularity", "compactness", "explicitness")
REFERENCE_PRESET = "reference"


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


_REGISTRY: dict[str, MetricInfo] = {}


def register_metric(
    name: str,
    *,
    family: str,
    properties: Sequence[str],
    description: str,
    in_default: bool = True,
    presets: dict[str, dict[str, Any]] | None = None,
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    """Decorator adding a metric function to the registry."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    unknown = set(properties) - set(PROPERTIES)
    if unknown:
        raise ValueError(f"unknown properties {sorted(unknown)}; choose from {PROPERTIES}")

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
        )
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
    discrete : per-factor discrete flags (None: all discrete).
    overrides : per-metric setting overrides, applied after the preset.
    """
    names = resolve_selection(metrics)
    if preset not in list_presets():
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(list_presets())}")
    overrides = overrides or {}
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"overrides given for metrics not selected: {sorted(unknown)}")
    results: dict[str, MetricResult] = {}
    for name in names:
        info = get_metric(name)
        settings = info.settings_for(preset)
        settings.update(overrides.get(name, {}))
        start = time.perf_counter()
        result = info.func(factors, codes, discrete=discrete, random_state=random_state, **settings)
        result.elapsed_s = time.perf_counter() - start
        result.settings.setdefault("preset", preset)
        results[name] = result
    return results
