"""The disentbench checkpoint format and safe loading (no knowledge of models: they rebuild themselves from it).

A checkpoint is a dict written with ``torch.save``::

    {"format": "disentbench-checkpoint", "format_version": 2, "disentbench_version": "0.1.0",
     "model_name": "multi-head",                 # registry name
     "config": {...}, "context": {...},          # the model's config dataclass and ModelContext, as plain data
     "state_dict": {name: tensor}, "representation": "posterior mean" | ...,
     "extra": {...plain data and tensors: training state (optimizer states, step, epoch, RNG states),
               run spec, dataset name/version, metrics...}}

It is loaded with ``torch.load(..., weights_only=True)``: nothing beyond tensors and plain data is ever unpickled.
Writes are atomic (:func:`disentbench.fileio.atomic_write`), so a crash or a full disk never leaves a torn file.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from disentbench.fileio import atomic_write

FORMAT = "disentbench-checkpoint"
FORMAT_VERSION = 2
FINAL_NAME = "model.pt"
RESUME_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A file that is not a valid, trusted disentbench checkpoint."""


def save_checkpoint(path, *, model_name: str, config: dict, context: dict, state_dict, representation: str,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint atomically (temp file + fsync + rename) and return its path."""
    import torch

    from disentbench import __version__

    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "disentbench_version": __version__,
        "model_name": str(model_name),
        "config": config,
        "context": context,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "representation": str(representation),
        "extra": dict(extra or {}),
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def save_model(path, model, extra: dict | None = None) -> Path:
    """Checkpoint a registered model (its registry name, config, context and weights)."""
    return save_checkpoint(path, model_name=model.name, config=model.config_dict(), context=model.context.to_dict(),
                           state_dict=model.state_dict(), representation=model.representation, extra=extra)


def content_sha256(ckpt: dict) -> str:
    """SHA-256 of what a checkpoint holds for scoring: registry name, config, context and every tensor (name, dtype,
    shape, bytes, in key order). ``torch.save`` writes a random serialization id into each file, so two bit-identical
    trainings give different file bytes but the same content hash, which keys score records and code caches."""
    import hashlib
    import json

    import torch

    digest = hashlib.sha256(json.dumps([ckpt["model_name"], ckpt["config"], ckpt["context"]], sort_keys=True,
                                       default=str).encode())
    for name in sorted(ckpt["state_dict"]):
        tensor = ckpt["state_dict"][name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


#: what the legacy (non-zip) ``torch.save`` format starts with: pickle protocol 2 and torch's magic number
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def _zip_names(path) -> list[str] | None:
    """The member names of a zip archive, or None when ``path`` is not one."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def is_torchscript(path) -> bool:
    """True if ``path`` is a TorchScript archive (``torch.jit.save``), which holds code next to its data."""
    names = _zip_names(path) or []
    return any(n.split("/", 1)[-1].startswith("code/") or n.endswith("/constants.pkl") for n in names)


def is_pt2(path) -> bool:
    """True if ``path`` is a ``torch.export`` archive (``torch.export.save``: ``<root>/archive_format`` or, in the
    format of torch 2.7, ``serialized_exported_program.json``)."""
    names = _zip_names(path) or []
    return any(n.split("/", 1)[-1] == "archive_format" or n == "serialized_exported_program.json" for n in names)


def _check_torch_file(path: Path) -> None:
    """Refuse a file that is neither a zip archive (``torch.save``'s format) nor a legacy torch pickle."""
    if _zip_names(path) is not None:
        return
    with open(path, "rb") as fh:
        head = fh.read(len(_LEGACY_TORCH_MAGIC))
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path}: not a torch checkpoint, or truncated/corrupt (a damaged zip archive)")
    if head != _LEGACY_TORCH_MAGIC:
        raise CheckpointError(f"{path}: not a checkpoint (neither a zip archive nor a torch pickle; starts with "
                              f"{head[:8]!r})")


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text or "weights_only" in text:
            raise CheckpointError(
                f"{path}: refusing to unpickle untrusted objects (the file needs Python classes or functions beyond "
                f"tensors and plain data; it is not a disentbench checkpoint)"
            ) from None
        raise CheckpointError(f"{path}: not a readable torch file ({text.splitlines()[0] if text else 'unpickling failed'})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, AttributeError, TypeError) as exc:
        first = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a torch checkpoint, or truncated/corrupt ({first})") from None


def load_checkpoint(path) -> dict:
    """Load and validate a checkpoint (``weights_only=True``); raise :class:`CheckpointError` with the reason.

    Checks: the path is a file; it is a torch file that unpickles to tensors and plain data only; ``format``,
    ``format_version`` and the type of every field. The model itself is checked when it is rebuilt
    (:func:`disentbench.models.model_from_checkpoint`: registered name, strict config, state_dict keys and shapes).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if is_torchscript(path):
        raise CheckpointError(f"{path}: is a TorchScript archive, not a disentbench checkpoint (use load_encoder)")
    if is_pt2(path):
        raise CheckpointError(f"{path}: is a torch.export program (.pt2), not a disentbench checkpoint "
                              "(evaluate --model reads it)")
    _check_torch_file(path)
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a disentbench checkpoint (format {found!r}, expected {FORMAT!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format_version {ckpt.get('format_version')!r} (this disentbench reads {FORMAT_VERSION})"
        )
    for key, kind in (("model_name", str), ("config", dict), ("context", dict), ("state_dict", dict),
                      ("representation", str), ("extra", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} missing or not a {kind.__name__}")
    return ckpt


def resolve_checkpoint(path) -> Path:
    """A checkpoint file, or a run folder's final checkpoint ``RUN_DIR/model.pt``."""
    path = Path(path)
    if path.is_dir():
        final = path / FINAL_NAME
        if not final.is_file():
            hint = f" (an unfinished run: {path / RESUME_NAME} holds its last checkpoint)" if (path / RESUME_NAME).is_file() else ""
            raise FileNotFoundError(f"{path} is not a finished run: {final} not found{hint}")
        return final
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint or run folder at {path}")
    return path
