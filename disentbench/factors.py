"""Factor spaces: the ground-truth grid of a dataset.

A :class:`FactorSpace` holds factor names, the number of values of each factor and the values
themselves. Grid points are ordered row-major over the factor *classes* (integer indices into
each factor's values), exactly as the official dSprites / Shapes3D / MPI3D files order their
images: ``index = ravel_multi_index(classes, sizes)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class FactorSpace:
    """Names, sizes and values of the ground-truth factors of a grid dataset.

    Parameters
    ----------
    names : factor names, in grid order.
    sizes : number of values per factor.
    values : optional per-factor value arrays (length ``sizes[k]``); defaults to ``0..size-1``.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    values: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        sizes = tuple(int(s) for s in self.sizes)
        if len(names) != len(sizes) or not names:
            raise ValueError(f"need one size per factor name, got {len(names)} names and {len(sizes)} sizes")
        if len(set(names)) != len(names):
            raise ValueError(f"factor names must be unique, got {names}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"every factor needs at least one value, got sizes {sizes}")
        if self.values:
            values = tuple(np.asarray(v, dtype=np.float64).reshape(-1) for v in self.values)
            if len(values) != len(sizes) or any(len(v) != s for v, s in zip(values, sizes)):
                raise ValueError("values must give exactly sizes[k] values for every factor k")
        else:
            values = tuple(np.arange(s, dtype=np.float64) for s in sizes)
        for v in values:
            v.setflags(write=False)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "values", values)

    # -- size -------------------------------------------------------------------------------
    @property
    def n_factors(self) -> int:
        return len(self.sizes)

    @property
    def n_points(self) -> int:
        """Number of points of the full grid (product of the sizes)."""
        return int(np.prod(self.sizes, dtype=np.int64))

    def __len__(self) -> int:
        return self.n_points

    def index_of(self, name: str) -> int:
        """Position of the factor called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown factor {name!r}; factors are {list(self.names)}") from None

    # -- index <-> classes ------------------------------------------------------------------
    def check_classes(self, classes: np.ndarray) -> np.ndarray:
        """Validate an (n, n_factors) array of factor classes and return it as int64."""
        classes = np.asarray(classes)
        if classes.ndim != 2 or classes.shape[1] != self.n_factors:
            raise ValueError(f"factor classes must have shape (n, {self.n_factors}), got {classes.shape}")
        if not np.issubdtype(classes.dtype, np.integer):
            if not np.all(np.mod(classes, 1) == 0):
                raise ValueError("factor classes must be integers")
        classes = classes.astype(np.int64, copy=False)
        bad = (classes < 0) | (classes >= np.asarray(self.sizes))
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"factor class {classes[row, col]} out of range for factor {self.names[col]!r} "
                f"(size {self.sizes[col]}) at row {row}"
            )
        return classes

    def check_indices(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """Validate grid indices (any shape) and return them as int64."""
        indices = np.asarray(indices)
        if indices.size and not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64, copy=False)
        if indices.size and (indices.min() < 0 or indices.max() >= self.n_points):
            raise IndexError(f"index out of range for a grid of {self.n_points} points")
        return indices

    def classes_to_index(self, classes: np.ndarray) -> np.ndarray:
        """Row-major grid index of each row of factor classes."""
        classes = self.check_classes(classes)
        return np.ravel_multi_index(tuple(classes.T), self.sizes).astype(np.int64)

    def index_to_classes(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """Factor classes (n, n_factors) of each grid index."""
        indices = self.check_indices(indices).reshape(-1)
        return np.stack(np.unravel_index(indices, self.sizes), axis=1).astype(np.int64)

    def classes_to_values(self, classes: np.ndarray) -> np.ndarray:
        """Factor values (n, n_factors) for factor classes."""
        classes = self.check_classes(classes)
        return np.stack([self.values[k][classes[:, k]] for k in range(self.n_factors)], axis=1)

    def normalised(self, classes: np.ndarray) -> np.ndarray:
        """Factor classes mapped to [0, 1] per factor: ``class / (size - 1)`` (0 for single-valued factors)."""
        classes = self.check_classes(classes)
        denom = np.maximum(np.asarray(self.sizes, dtype=np.float64) - 1.0, 1.0)
        return classes / denom

    def all_classes(self) -> np.ndarray:
        """Classes of every grid point, in grid (row-major) order."""
        return self.index_to_classes(np.arange(self.n_points))

    # -- sampling ---------------------------------------------------------------------------
    def sample_classes(self, n: int, rng: np.random.Generator | int | None) -> np.ndarray:
        """``n`` grid points drawn uniformly (with replacement) as factor classes."""
        rng = np.random.default_rng(rng)
        return np.stack([rng.integers(0, s, size=n) for s in self.sizes], axis=1).astype(np.int64)

    def sample_with_fixed(
        self, n: int, factor: int, value_class: int, rng: np.random.Generator | int | None
    ) -> np.ndarray:
        """``n`` points with factor ``factor`` fixed at class ``value_class``, the others resampled."""
        if not 0 <= factor < self.n_factors:
            raise ValueError(f"factor index {factor} out of range for {self.n_factors} factors")
        if not 0 <= value_class < self.sizes[factor]:
            raise ValueError(f"class {value_class} out of range for factor {self.names[factor]!r}")
        classes = self.sample_classes(n, rng)
        classes[:, factor] = value_class
        return classes

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "sizes": list(self.sizes),
            "values": [v.tolist() for v in self.values],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FactorSpace":
        return cls(tuple(data["names"]), tuple(data["sizes"]), tuple(np.asarray(v) for v in data.get("values", ())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FactorSpace):
            return NotImplemented
        return (
            self.names == other.names
            and self.sizes == other.sizes
            and all(np.array_equal(a, b) for a, b in zip(self.values, other.values))
        )

    def __hash__(self) -> int:
        return hash((self.names, self.sizes))
