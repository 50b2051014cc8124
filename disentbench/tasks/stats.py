"""Per-task statistics of targets, accumulated chunk by chunk over a factor grid.

For targets ``y`` (n, T) and normalised factors ``z`` (n, K) it reports, per task, the mean, the
population standard deviation (ddof = 0) and the fraction of variance a linear model on *all* factors
explains: ordinary least squares of ``y_t`` on ``X = [1, z]`` over every point seen,

    R²_t = 1 − SSE_t / SST_t,   SSE_t = y_tᵀy_t − β_tᵀ Xᵀy_t  (β_t solves XᵀX β_t = Xᵀy_t),
    SST_t = y_tᵀy_t − n·ȳ_t².

Only XᵀX, Xᵀy and yᵀy are kept (float64), so the exact full-grid fit streams with O(K² + KT) memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskStatistics:
    """``mean``, ``std`` and ``linear_r2`` as float64 arrays of shape (n_tasks,)."""

    n_points: int
    mean: np.ndarray
    std: np.ndarray
    linear_r2: np.ndarray


class TargetStatistics:
    """Streaming accumulator of :class:`TaskStatistics` (update with chunks, then :meth:`result`)."""

    def __init__(self, n_factors: int, n_tasks: int) -> None:
        self._gram = np.zeros((n_factors + 1, n_factors + 1))
        self._xty = np.zeros((n_factors + 1, n_tasks))
        self._yty = np.zeros(n_tasks)
        self._n = 0

    def update(self, z: np.ndarray, y: np.ndarray) -> None:
        """Add a chunk of normalised factors ``z`` (n, K) and targets ``y`` (n, T)."""
        x = np.empty((z.shape[0], z.shape[1] + 1))
        x[:, 0] = 1.0
        x[:, 1:] = z
        y = np.asarray(y, dtype=np.float64)
        self._gram += x.T @ x
        self._xty += x.T @ y
        self._yty += np.einsum("ij,ij->j", y, y)
        self._n += z.shape[0]

    def result(self) -> TaskStatistics:
        if self._n == 0:
            raise ValueError("no points accumulated")
        n = self._n
        mean = self._xty[0] / n
        sst = np.maximum(self._yty - n * mean**2, 0.0)
        beta = np.linalg.lstsq(self._gram, self._xty, rcond=None)[0]
        explained = np.einsum("kt,kt->t", beta, self._xty) - n * mean**2
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = np.where(sst > 0, np.clip(explained / sst, 0.0, 1.0), np.nan)
        return TaskStatistics(n, mean, np.sqrt(sst / n), r2)
