"""2-D embeddings of the codes on the evaluated grid, one panel per factor coloured by its class (seed 004 sec. 4.2
shows UMAP). PCA (all sampled points shown, fitted on the standardised codes) and t-SNE (scikit-learn) by default;
UMAP when the optional ``umap-learn`` extra is installed. The non-linear methods run on a seeded subsample of
:data:`MAX_POINTS` points (t-SNE on 15,000 points takes minutes on two cores); the same subsample is drawn for
every method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: points embedded and drawn per method (a seeded subsample of the evaluated grid sample)
MAX_POINTS = 1500


@dataclass
class Embedding:
    """``points`` (n, 2) of ``method`` for the sample rows ``positions``."""

    method: str
    points: np.ndarray
    positions: np.ndarray


def available_methods() -> list[str]:
    """``pca``, ``tsne`` and, when ``umap-learn`` is importable, ``umap``."""
    try:
        import umap  # noqa: F401
    except ImportError:
        return ["pca", "tsne"]
    return ["pca", "tsne", "umap"]


def subsample(n: int, seed: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted seeded subsample of ``range(n)`` (everything when ``n <= max_points``)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def standardise(codes: np.ndarray) -> np.ndarray:
    """Codes with each dimension centred and scaled to unit std (constant dimensions left at 0)."""
    codes = np.asarray(codes, dtype=np.float64)
    std = codes.std(axis=0)
    return (codes - codes.mean(axis=0)) / np.where(std > 0, std, 1.0)


def embed(codes: np.ndarray, method: str, positions: np.ndarray, seed: int) -> Embedding:
    """2-D embedding of the standardised ``codes[positions]`` with ``method`` (seeded)."""
    x = standardise(codes)[positions]
    if x.shape[1] == 1:
        x = np.hstack([x, np.zeros_like(x)])
    if method == "pca":
        from sklearn.decomposition import PCA

        points = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        points = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed,
                      n_jobs=1).fit_transform(x)
    elif method == "umap":
        import umap

        points = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(x)
    else:
        raise ValueError(f"unknown embedding {method!r}; available: {', '.join(available_methods())}")
    return Embedding(method, np.asarray(points, dtype=np.float64), positions)


def panel_size(n_methods: int, n_factors: int) -> tuple[int, int]:
    """(height, width) in pixels of :func:`plot_embeddings`."""
    from disentbench.viz.figures import DPI

    return int(round((0.3 + 2.0 * n_methods) * DPI)), int(round(2.0 * n_factors * DPI))


def plot_embeddings(embeddings: Sequence[Embedding], classes: np.ndarray, factor_names: Sequence[str], path: Path,
                    *, title: str) -> tuple[int, int]:
    """One row per method, one panel per factor: the points coloured by that factor's class (viridis)."""
    from disentbench.viz.figures import DPI, pyplot, save

    plt = pyplot()
    height, width = panel_size(len(embeddings), len(factor_names))
    fig, axes = plt.subplots(len(embeddings), len(factor_names), figsize=(width / DPI, height / DPI), dpi=DPI,
                             squeeze=False)
    for row, emb in zip(axes, embeddings):
        for k, (ax, name) in enumerate(zip(row, factor_names)):
            ax.scatter(emb.points[:, 0], emb.points[:, 1], c=classes[emb.positions, k], s=2, cmap="viridis",
                       linewidths=0, rasterized=True)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{emb.method}: {name}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / (height / DPI)))
    return save(fig, path)
