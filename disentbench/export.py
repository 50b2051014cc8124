"""Export a trained model's representation (``model.encode``) for use outside disentbench.

TorchScript: ``torch.jit.trace`` of a module whose ``forward`` is the model's ``encode`` (images (B, C, 64, 64) in
[0, 1] → codes (B, d); eval mode; the batch dimension stays free because the traced graph has no batch-size
constant). TorchScript is deprecated in the pinned PyTorch; it is still read by ``evaluate``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from disentbench.fileio import atomic_write
from disentbench.models import Model, load_model


class _Encode(torch.nn.Module):
    """``forward = model.encode``: the representation alone, as one module."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images)


def torchscript_encoder(model: Model) -> torch.jit.ScriptModule:
    """A traced module ``images (B, C, 64, 64) in [0, 1] → codes (B, d)`` of ``model.encode`` (eval mode)."""
    example = torch.zeros(2, model.context.channels, 64, 64)
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript in favour of torch.export
        warnings.simplefilter("ignore")
        return torch.jit.trace(_Encode(model.eval()), example, check_trace=False)


def export_torchscript(run, out_path) -> Path:
    """Write the encoder of a run folder or checkpoint as TorchScript (atomically); returns the output path."""
    model, _ = load_model(run)
    traced = torchscript_encoder(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return atomic_write(out_path, lambda fh: torch.jit.save(traced, fh))
