"""Models: one registry (:mod:`~disentbench.models.registry`), one file per model family, shared blocks.

Families: :mod:`~disentbench.models.multitask` (seed 004's random, single-task, multi-head, one-head),
:mod:`~disentbench.models.vae` (AE, VAE, β-VAE, FactorVAE, β-TCVAE, DIP-VAE-I/II, AnnealedVAE),
:mod:`~disentbench.models.downstream` (the Table-1 / Table-4 protocols on a frozen encoder), and every other module
of this package: importing the package imports each module once, which registers its models, so a new model family
is a new file here and nothing else. Every model is a :class:`~disentbench.models.base.Model` that owns its
objective; ``disentbench train --list`` prints the registry.
"""

import importlib
import pkgutil

from disentbench.models import multitask, vae  # noqa: F401  (the seed-004 families register first)
from disentbench.models.base import Batch, Model, ModelContext, NonFiniteLoss
from disentbench.models.loading import load_encoder, load_model, model_from_checkpoint
from disentbench.models.registry import ModelInfo, build_model, get_model, list_models, register_model

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Batch", "Model", "ModelContext", "ModelInfo", "NonFiniteLoss", "build_model", "get_model", "list_models",
           "load_encoder", "load_model", "model_from_checkpoint", "register_model"]
