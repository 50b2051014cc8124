"""Export a trained model's representation (``model.encode``) for use outside disentbench.

* ``pt2`` (default): ``torch.export`` of a module whose ``forward`` is the model's ``encode`` (images (B, C, 64, 64)
  in [0, 1] → codes (B, d); eval mode; the batch dimension is a ``torch.export.Dim``, so any batch size runs);
* ``safetensors``: a folder with ``model.safetensors`` (the state_dict) and ``config.json`` (registry name, model
  config, context, representation, disentbench version), rebuilt through the model registry with no pickle
  (:mod:`disentbench.exchange`): the format to exchange models;
* ``torchscript``: ``torch.jit.trace`` of the same module (deprecated in the pinned PyTorch; still read).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from disentbench.fileio import atomic_write, atomic_write_text
from disentbench.models import Model, load_model

FORMATS = ("pt2", "torchscript", "safetensors")


class _Encode(torch.nn.Module):
    """``forward = model.encode``: the representation alone, as one module."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images)


def _example(model: Model) -> torch.Tensor:
    return torch.zeros(2, model.context.channels, 64, 64)


def torchscript_encoder(model: Model) -> torch.jit.ScriptModule:
    """A traced module ``images (B, C, 64, 64) in [0, 1] → codes (B, d)`` of ``model.encode`` (eval mode)."""
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript in favour of torch.export
        warnings.simplefilter("ignore")
        return torch.jit.trace(_Encode(model.eval()), _example(model), check_trace=False)


def pt2_program(model: Model) -> torch.export.ExportedProgram:
    """``torch.export`` of ``model.encode`` in eval mode with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        return torch.export.export(_Encode(model.eval()), (_example(model),), dynamic_shapes=({0: batch},))


def export_torchscript(run, out_path) -> Path:
    """Write the encoder of a run folder or checkpoint as TorchScript (atomically); returns the output path."""
    model, _ = load_model(run)
    traced = torchscript_encoder(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return atomic_write(out_path, lambda fh: torch.jit.save(traced, fh))


def export_pt2(run, out_path) -> Path:
    """Write the encoder of a run folder or checkpoint as a ``torch.export`` program (atomically)."""
    model, _ = load_model(run)
    program = pt2_program(model)
    return atomic_write(out_path, lambda fh: torch.export.save(program, fh))


def export_safetensors(run, out_dir) -> Path:
    """Write ``OUT/model.safetensors`` and ``OUT/config.json`` of a run folder or checkpoint; returns ``OUT``."""
    from safetensors.torch import save

    from disentbench import __version__
    from disentbench.exchange import CONFIG_NAME, EXCHANGE_FORMAT, EXCHANGE_FORMAT_VERSION, SAFETENSORS_NAME

    _, ckpt = load_model(run)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; safetensors export writes a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in ckpt["state_dict"].items()}
    atomic_write(out_dir / SAFETENSORS_NAME, lambda fh: fh.write(save(tensors)))
    meta = {"format": EXCHANGE_FORMAT, "format_version": EXCHANGE_FORMAT_VERSION, "disentbench_version": __version__,
            **{k: ckpt[k] for k in ("model_name", "config", "context", "representation")}}
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    return out_dir


def export(run, out, fmt: str = "pt2") -> Path:
    """Export the encoder of a run folder or checkpoint in format ``fmt`` (one of :data:`FORMATS`)."""
    writers = {"pt2": export_pt2, "torchscript": export_torchscript, "safetensors": export_safetensors}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    return writers[fmt](run, out)
