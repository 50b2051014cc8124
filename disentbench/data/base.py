"""The one interface every ground-truth dataset implements."""

from __future__ import annotations

import abc

import numpy as np

from disentbench.factors import FactorSpace


class GroundTruthDataset(abc.ABC):
    """Images with ground-truth factors on a full factor grid.

    ``images(indices)`` returns uint8 ``(n, 64, 64, channels)`` for grid indices (row-major over
    ``factor_space``). Reads are random access and memory bounded.
    """

    #: dataset name as used on the CLI and in score records (``dsprites``, ``dsprites-procedural``, ...)
    name: str = ""
    #: version string stamped on score records; changes whenever pixels or factors could change
    version: str = ""
    #: image channels (1 for dSprites, 3 for Shapes3D / MPI3D)
    channels: int = 1
    #: image side in pixels
    resolution: int = 64
    #: largest pixel value: 1 for the binary dSprites images (stored 0/1 as in the official files), else 255;
    #: divide by it to get images in [0, 1]
    pixel_max: int = 255

    @property
    @abc.abstractmethod
    def factor_space(self) -> FactorSpace:
        """The dataset's factor grid."""

    @abc.abstractmethod
    def _read(self, indices: np.ndarray) -> np.ndarray:
        """Read validated int64 grid indices (1-D) as uint8 (n, H, W, C)."""

    def images(self, indices) -> np.ndarray:
        """uint8 images (n, H, W, C) for grid indices; raises IndexError for out-of-range indices."""
        flat = self.factor_space.check_indices(indices).reshape(-1)
        return self._read(flat)

    def images_float(self, indices) -> np.ndarray:
        """float32 images (n, H, W, C) in [0, 1]: ``images(indices) / pixel_max``."""
        return self.images(indices).astype(np.float32) / np.float32(self.pixel_max)

    def images_for_classes(self, classes: np.ndarray) -> np.ndarray:
        """uint8 images for rows of factor classes."""
        return self.images(self.factor_space.classes_to_index(classes))

    def __len__(self) -> int:
        return self.factor_space.n_points

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} v{self.version}: {len(self)} images>"
