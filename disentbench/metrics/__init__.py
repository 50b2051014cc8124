"""The metric engine: disentanglement metrics on plain arrays (numpy / scipy / scikit-learn; no torch).

Every metric is a function ``metric(factors, codes, *, discrete=None, random_state=0, **settings)``
returning a :class:`MetricResult`; each is exposed here under its registry name
(``metrics.mig``, ``metrics.dci``, ...). :func:`compute_metrics` runs a selection.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from disentbench.metrics._result import MetricResult
from disentbench.metrics._validation import InputSizeWarning, MetricWarning
from disentbench.metrics.registry import (
    ScoreMeaning,
    compute_metrics,
    get_metric,
    list_metrics,
    list_presets,
    list_scores,
    register_metric,
    register_score,
    score_meaning,
)

#: version of the set of metric definitions; bump when any metric's definition or default changes
METRIC_DEFINITIONS_VERSION = "1"

for _module in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_") and _module.name != "registry":
        _importlib.import_module(f"{__name__}.{_module.name}")

for _info in list_metrics():
    globals()[_info.name] = _info.func

__all__ = [
    "METRIC_DEFINITIONS_VERSION",
    "MetricResult",
    "InputSizeWarning",
    "MetricWarning",
    "ScoreMeaning",
    "compute_metrics",
    "get_metric",
    "list_metrics",
    "list_presets",
    "list_scores",
    "register_metric",
    "register_score",
    "score_meaning",
    *[_info.name for _info in list_metrics()],
]
