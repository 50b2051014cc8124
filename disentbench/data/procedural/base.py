"""What every procedural renderer shares: a factor grid rendered on demand, optionally through the render cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentbench.data.base import GroundTruthDataset
from disentbench.data.procedural.cache import render_cache
from disentbench.factors import FactorSpace


class ProceduralDataset(GroundTruthDataset):
    """A ground-truth dataset whose images :meth:`render_classes` draws from factor classes; with ``cache`` the
    renders are kept in a memory-mapped cache under ``<cache>/<name>-v<version>/``."""

    def __init__(self, space: FactorSpace, *, cache: bool = False, cache_dir: str | Path | None = None) -> None:
        self._space = space
        self._cache = render_cache(self, cache, cache_dir)

    @property
    def factor_space(self) -> FactorSpace:
        return self._space

    def render_classes(self, classes: np.ndarray) -> np.ndarray:
        """uint8 images (n, 64, 64, channels) for factor classes (n, n_factors)."""
        raise NotImplementedError

    def _read(self, indices: np.ndarray) -> np.ndarray:
        def render(i: np.ndarray) -> np.ndarray:
            return self.render_classes(self._space.index_to_classes(i))

        return self._cache.read(indices, render) if self._cache else render(indices)
