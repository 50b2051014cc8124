"""Reference trainers: one loop for every registered model (:func:`train`), strict reference configs and run specs."""

from disentbench.training.config import load_reference, reference_dir, resolve_spec
from disentbench.training.loop import TrainingDiverged, setup_run, train

__all__ = ["TrainingDiverged", "load_reference", "reference_dir", "resolve_spec", "setup_run", "train"]
