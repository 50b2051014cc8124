"""disentbench: a benchmark suite for disentangled representations.

The Python API mirrors the CLI: :func:`evaluate`, :func:`train`, :func:`generate_tasks`, :func:`score`,
:func:`report` (see :mod:`disentbench.api`). Heavy dependencies (torch, scikit-learn) are imported lazily by the modules that need
them, so ``import disentbench`` and ``from disentbench import metrics`` stay fast and torch-free.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("evaluate", "generate_tasks", "report", "score", "train")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from disentbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'disentbench' has no attribute {name!r}")
