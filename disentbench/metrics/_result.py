"""The result every metric returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class MetricResult:
    """Scores of one metric on one representation, with what is needed to trust and reproduce them.

    Attributes
    ----------
    metric : registry name of the metric (``"dci"``).
    scores : namespaced keys (``"dci.disentanglement"``) to Python floats; never NaN.
    settings : every setting that influenced the scores (including ``random_state`` and ``preset``).
    matrices : the statistic behind the scores (mutual-information or importance matrix, ...),
        arrays shaped (n_codes, n_factors) unless documented otherwise.
    definition_version : version of the metric's definition (changes whenever scores could move).
    warnings : human-readable notes (constant codes dropped, single-valued factors skipped, ...).
    elapsed_s : wall-clock seconds spent computing.
    """

    metric: str
    scores: dict[str, float]
    settings: dict[str, Any]
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    definition_version: str = "1"
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        clean = {}
        for key, value in self.scores.items():
            value = float(value)
            if not math.isfinite(value):
                raise RuntimeError(f"metric {self.metric!r} produced a non-finite score for {key!r}: {value}")
            clean[key] = value
        self.scores = clean

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def to_dict(self, include_matrices: bool = False) -> dict[str, Any]:
        """JSON-ready dictionary (matrices as nested lists when asked)."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "definition_version": self.definition_version,
            "scores": dict(self.scores),
            "settings": _jsonable(self.settings),
            "warnings": list(self.warnings),
            "elapsed_s": round(self.elapsed_s, 6),
        }
        if include_matrices:
            out["matrices"] = {k: np.asarray(v).tolist() for k, v in self.matrices.items()}
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
