"""Codes × factors heatmaps read from the score record's matrices (nothing recomputed): the normalised mutual
information of the MIG family (I(z_j; v_k) / H(v_k)), the DCI importance matrix, and the |Spearman ρ| of the matching
(seed 004 app. I) with each code's matched factor marked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: matrix families: (title, metric in the record, how to read it)
FAMILIES = {
    "mutual_info": ("normalised mutual information I(z_j; v_k) / H(v_k)", "mig"),
    "importance": ("DCI importance R_jk", "dci"),
    "spearman": ("Spearman |ρ_jk| (□: the code's matched factor)", "spearman"),
}


@dataclass
class Heatmap:
    """``values`` (n_codes, n_factors) with NaN where not computed; ``marks`` (n_codes,) factor marked per code
    (−1: none) or None."""

    name: str
    title: str
    values: np.ndarray
    marks: np.ndarray | None = None


def _matrix(details: dict, key: str) -> np.ndarray:
    return np.array(details["matrices"][key], dtype=np.float64)  # None (non-finite) -> nan


def record_heatmaps(record: dict, n_factors: int) -> tuple[list[Heatmap], list[str]]:
    """The heatmaps the record's ``metric_details`` hold matrices for, and a note per family it lacks."""
    maps, missing = [], []
    details = record.get("metric_details", {})
    for name, (title, metric) in FAMILIES.items():
        entry = details.get(metric, {})
        if name not in entry.get("matrices", {}):
            missing.append(f"{metric}: {name}" if metric in details else f"{metric} (not evaluated)")
            continue
        values, marks = _matrix(entry, name), None
        if name == "mutual_info":
            entropy = np.broadcast_to(_matrix(entry, "factor_entropy"), values.shape)
            values = np.divide(values, entropy, out=np.full_like(values, np.nan), where=entropy > 0)
        elif name == "importance":
            full = np.full((values.shape[0], n_factors), np.nan)
            full[:, _matrix(entry, "factor_index").astype(int)] = values
            values = full
        else:
            values, marks = np.abs(values), _matrix(entry, "matched_factor").astype(int)
        maps.append(Heatmap(name, title, values, marks))
    return maps, missing


def matched_factors(heatmap: Heatmap, factor_names: Sequence[str]) -> list[str]:
    """Per code: ``name (value)`` of its largest entry (or its marked factor), ``–`` when none."""
    out = []
    for j, row in enumerate(heatmap.values):
        k = heatmap.marks[j] if heatmap.marks is not None else (int(np.nanargmax(row)) if np.isfinite(row).any()
                                                                 else -1)
        out.append("–" if k < 0 else f"{factor_names[k]} ({row[k]:.2f})")
    return out


def plot_heatmaps(maps: Sequence[Heatmap], factor_names: Sequence[str], path: Path, *,
                  title: str) -> tuple[int, int]:
    """The heatmaps side by side (rows: codes z0…; columns: factors), values written in the cells."""
    from disentbench.viz.figures import DPI, pyplot, save

    plt = pyplot()
    n_codes = maps[0].values.shape[0]
    height = max(2.6, 0.32 * n_codes + 1.4)
    fig, axes = plt.subplots(1, len(maps), figsize=(max(3.2, 0.55 * len(factor_names) + 1.6) * len(maps), height),
                             dpi=DPI, squeeze=False)
    for ax, hm in zip(axes[0], maps):
        ax.imshow(np.nan_to_num(hm.values, nan=0.0), cmap="Blues", vmin=0.0, vmax=max(1e-9, np.nanmax(hm.values)),
                  aspect="auto")
        for (j, k), v in np.ndenumerate(hm.values):
            ax.text(k, j, "–" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=6)
        if hm.marks is not None:
            for j, k in enumerate(hm.marks):
                if k >= 0:
                    ax.add_patch(plt.Rectangle((k - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="crimson", lw=1.5))
        ax.set_xticks(range(len(factor_names)), factor_names, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(n_codes), [f"z{j}" for j in range(n_codes)], fontsize=7)
        ax.set_title(hm.title, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)
