"""Ground-truth datasets behind one interface (:class:`~disentbench.data.base.GroundTruthDataset`).

``get_dataset(name)`` opens a dataset by name; ``list_datasets()`` lists them all.
"""

from disentbench.data.base import GroundTruthDataset
from disentbench.data.registry import dataset_names, get_dataset, list_datasets

__all__ = ["GroundTruthDataset", "dataset_names", "get_dataset", "list_datasets"]
