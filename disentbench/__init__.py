"""disentbench: a benchmark suite for disentangled representations.

Heavy dependencies (torch, scikit-learn) are imported lazily by the modules that need them, so
``import disentbench`` and ``from disentbench import metrics`` stay fast and torch-free.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
