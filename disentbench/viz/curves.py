"""Curves over training steps from ``log.jsonl``: training losses, the model's per-epoch test numbers
(``{"event": "eval"}``) and the cheap metrics of ``train --metrics-every`` (``{"event": "metrics"}``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: log keys that are bookkeeping, not curves
NOT_CURVES = ("step", "epoch", "event", "images_per_s")
PANELS = {None: "training losses", "eval": "test numbers per epoch (model's own protocol)",
          "metrics": "metrics on the monitoring sample (train --metrics-every)"}


@dataclass
class Curves:
    """``panels``: panel title -> curve name -> (steps, values) arrays."""

    panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]

    def arrays(self) -> list[np.ndarray]:
        return [a for curves in self.panels.values() for name in sorted(curves) for a in curves[name]]


def log_curves(log: list[dict]) -> Curves:
    """Numeric series per log event kind (losses, eval, metrics), in step order; empty panels left out."""
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for line in log:
        title = PANELS.get(line.get("event"))
        if title is None or "step" not in line:
            continue
        for key, value in line.items():
            if key not in NOT_CURVES and isinstance(value, (int, float)) and not isinstance(value, bool):
                panels.setdefault(title, {}).setdefault(key, []).append((float(line["step"]), float(value)))
    return Curves({title: {k: tuple(np.array(v).T) for k, v in curves.items()}
                   for title, curves in panels.items()})


def plot_curves(curves: Curves, path: Path, *, title: str) -> tuple[int, int]:
    """One panel per series kind, on a log scale when its values are positive and span over two decades."""
    from disentbench.viz.figures import DPI, pyplot, save

    plt = pyplot()
    n = len(curves.panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), dpi=DPI, squeeze=False)
    for ax, (panel, series) in zip(axes[0], curves.panels.items()):
        for name in sorted(series):
            steps, values = series[name]
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, lw=1, label=name)
        values = np.concatenate([v for _, v in series.values()])
        if (values > 0).all() and values.max() > 100 * values.min():
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(panel, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)
