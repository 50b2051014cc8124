"""Checkpoint or TorchScript file -> model or encoder function, through the registry.

A checkpoint is rebuilt from its registry name, config and context (see :mod:`disentbench.checkpoint` for the
file format) and its state_dict is loaded strictly; a mismatch is a :class:`~disentbench.checkpoint.CheckpointError`
naming the keys. Rebuilding never touches the global torch RNG.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import torch

from disentbench.checkpoint import (CheckpointError, content_sha256, is_pt2, is_torchscript, load_checkpoint,
                                    resolve_checkpoint)
from disentbench.models.base import Model
from disentbench.models.registry import build_model


def model_from_checkpoint(ckpt: dict, path: str | Path = "checkpoint") -> Model:
    """The model of a loaded checkpoint with its weights (strict), in eval mode."""
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_model(ckpt["model_name"], ckpt["config"], ckpt["context"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild model {ckpt.get('model_name')!r}: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = ckpt["state_dict"]
    if any(not isinstance(v, torch.Tensor) for v in got.values()):
        raise CheckpointError(f"{path}: state_dict holds values that are not tensors")
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if tuple(got[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:5]}"] if missing else []
        parts += [f"unexpected {unexpected[:5]}"] if unexpected else []
        parts += ["wrong shapes " + ", ".join(f"{k} {tuple(got[k].shape)} != {expected[k]}" for k in wrong[:5])] \
            if wrong else []
        raise CheckpointError(f"{path}: state_dict does not match the {ckpt['model_name']!r} config: "
                              + "; ".join(parts))
    model.load_state_dict(got, strict=True)
    return model.eval()


def load_model(path) -> tuple[Model, dict]:
    """(model in eval mode, checkpoint dict) from a checkpoint file or a finished run folder."""
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path)
    return model_from_checkpoint(ckpt, path), ckpt


def named_representation(model: Model, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``images -> model.representations(images)[name]``, refusing a name the model does not define."""
    names = list(model.representations(torch.zeros(1, model.context.channels, 64, 64)))
    if name not in names:
        raise ValueError(f"model {model.name!r} has no representation {name!r}; it has "
                         f"{', '.join(names) if names else 'only its default one (encode)'}")
    return lambda images: model.representations(images)[name]


def load_encoder(path, device: str = "cpu", representation: str | None = None) -> tuple[Callable, dict]:
    """An encoder function from a disentbench checkpoint, a run folder (its ``model.pt``), a TorchScript file, a
    ``torch.export`` program (``.pt2``, audited) or an exported safetensors folder (:mod:`disentbench.exchange`).

    Returns ``(encoder_fn, info)``: ``encoder_fn`` maps float images in [0, 1] of shape (B, C, 64, 64) (a tensor or
    a numpy array) to codes (B, d) as a float32 CPU tensor, deterministically (eval mode, no grad: the model's
    ``encode``). ``info`` holds ``model_name``, ``config``, ``representation``, ``latent_dim`` (the code width d),
    ``channels``, ``source`` (``"checkpoint"``, ``"torchscript"``, ``"pt2"`` or ``"safetensors"``) and, for checkpoints
    and safetensors folders, ``content_sha256``
    (:func:`~disentbench.checkpoint.content_sha256`). ``representation`` names one of a checkpoint model's
    :meth:`~disentbench.models.base.Model.representations` to encode instead of its default. ``own_protocol``: what
    the model's own ``evaluate`` gave on its run's test split when training ended (checkpoints; e.g. DualDis's four
    published numbers).
    """
    from disentbench.exchange import is_safetensors_dir, open_exchange

    path = Path(path)
    if representation is not None and (is_safetensors_dir(path) or (path.is_file() and is_pt2(path))
                                       or is_torchscript(resolve_checkpoint(path))):
        raise ValueError(f"{path}: --representation needs a disentbench checkpoint or run folder")
    if is_safetensors_dir(path) or (path.is_file() and is_pt2(path)):
        encode, info = open_exchange(path, device)
    elif is_torchscript(path := resolve_checkpoint(path)):
        with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device).eval()
        encode = module
        info = {"model_name": "torchscript", "config": {}, "representation": "torchscript", "source": "torchscript",
                "latent_dim": None, "channels": None}
    else:
        model, ckpt = load_model(path)
        model = model.to(device)
        encode = model.encode if representation is None else named_representation(model, representation)
        info = {"model_name": ckpt["model_name"], "config": ckpt["config"],
                "representation": representation or model.representation, "source": "checkpoint",
                "latent_dim": model.code_dim if representation is None else None, "channels": model.context.channels,
                "content_sha256": content_sha256(ckpt), "own_protocol": ckpt["extra"].get("metrics") or None}

    def encoder_fn(images) -> torch.Tensor:
        x = torch.as_tensor(images, dtype=torch.float32).to(device)
        if x.ndim != 4 or x.shape[-2:] != (64, 64):
            raise ValueError(f"images must have shape (B, C, 64, 64), got {tuple(x.shape)}")
        with torch.no_grad():
            codes = encode(x)
        return codes.float().cpu()

    return encoder_fn, info
