"""Ground-truth datasets behind one interface (:class:`~disentbench.data.base.GroundTruthDataset`)."""

from disentbench.data.base import GroundTruthDataset

__all__ = ["GroundTruthDataset"]
