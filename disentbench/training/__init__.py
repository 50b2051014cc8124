"""Reference trainers of seed 004: one shared loop (:func:`train`), objectives per model, tiered configs."""

from disentbench.training.config import load_reference, reference_dir, resolve_spec
from disentbench.training.loop import TrainingDiverged, train

__all__ = ["TrainingDiverged", "load_reference", "reference_dir", "resolve_spec", "train"]
