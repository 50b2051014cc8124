"""Rows grouped by factor value, for interventional metrics computed from a code table.

"Fix factor k at value v, others random" becomes "draw rows whose factor k equals v": with a table that covers
the factor grid uniformly (every combination equally often) this is exactly the reference's sampling.
"""

from __future__ import annotations

import numpy as np


class FactorGroups:
    """For every factor k and value index v: the rows with that value (sorted once, all factors flattened).

    ``labels`` is (n_samples, n_factors) of integer labels 0..K_k-1 (see ``factor_labels``).
    """

    def __init__(self, labels: np.ndarray):
        n, n_factors = labels.shape
        self.labels = labels
        self.n_values = labels.max(axis=0) + 1
        # group id of (k, v) = offset[k] + v; factor k's rows, sorted by value, occupy rows[k*n:(k+1)*n]
        self.offset = np.concatenate([[0], np.cumsum(self.n_values)[:-1]])
        self.rows = np.argsort(labels, axis=0, kind="stable").T.reshape(-1)
        self.count = np.concatenate([np.bincount(labels[:, k], minlength=self.n_values[k]) for k in range(n_factors)])
        first = np.concatenate([np.cumsum(c) - c for c in np.split(self.count, self.offset[1:])])
        self.start = np.repeat(np.arange(n_factors), self.n_values) * n + first

    def group_sizes(self, k: int) -> np.ndarray:
        """Number of rows holding each value of factor k."""
        return self.count[self.offset[k] : self.offset[k] + self.n_values[k]]

    def draw(self, k: np.ndarray, v: np.ndarray, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Rows with factor ``k`` == value ``v`` drawn uniformly with replacement (broadcast ``k``, ``v``);
        ``size`` adds a trailing axis of that many draws."""
        g = self.offset[k] + v
        shape = np.shape(g) if size is None else np.shape(g) + (size,)
        if size is not None:
            g = np.expand_dims(g, -1)
        u = rng.random(shape)
        return self.rows[self.start[g] + (u * self.count[g]).astype(np.int64)]
