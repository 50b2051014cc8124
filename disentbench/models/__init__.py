"""Models: one registry (:mod:`~disentbench.models.registry`), one file per model family, shared blocks.

Families: :mod:`~disentbench.models.multitask` (seed 004's random, single-task, multi-head, one-head),
:mod:`~disentbench.models.vae` (AE, VAE, β-VAE, FactorVAE, β-TCVAE, DIP-VAE-I/II, AnnealedVAE) and
:mod:`~disentbench.models.downstream` (the Table-1 / Table-4 protocols on a frozen encoder). Every model is a
:class:`~disentbench.models.base.Model` that owns its objective; ``disentbench train --list`` prints the registry.
"""

# importing the family modules registers their models, in this order (train --list, the smoke model list)
from disentbench.models import multitask, vae, downstream  # noqa: F401, I001
from disentbench.models.base import Batch, Model, ModelContext, NonFiniteLoss
from disentbench.models.loading import load_encoder, load_model, model_from_checkpoint
from disentbench.models.registry import ModelInfo, build_model, get_model, list_models, register_model

__all__ = ["Batch", "Model", "ModelContext", "ModelInfo", "NonFiniteLoss", "build_model", "get_model", "list_models",
           "load_encoder", "load_model", "model_from_checkpoint", "register_model"]
