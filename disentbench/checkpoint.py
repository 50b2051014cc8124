"""The disentbench checkpoint format, safe loading, and TorchScript encoders.

A checkpoint is a dict written with ``torch.save``::

    {"format": "disentbench-checkpoint", "format_version": 1, "disentbench_version": "0.1.0",
     "model_name": "multi-head", "config": {...plain model config, see disentbench.models...},
     "state_dict": {name: tensor}, "representation": "encoder" | "encoder.mean",
     "extra": {...plain data and tensors: training state (optimizer states, step, epoch, RNG states),
               run config, dataset name/version, metrics...}}

It is loaded with ``torch.load(..., weights_only=True)``: nothing beyond tensors and plain data is
ever unpickled. Writes go to a temporary file in the same folder, are fsync'ed, then renamed over
the target (``os.replace``), so a crash or a full disk never leaves a torn checkpoint.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

FORMAT = "disentbench-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a valid, trusted disentbench checkpoint."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; any previous file at the target path is unchanged."""


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path``, fsync it, then ``os.replace`` it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointWriteError(
                exc.errno, f"could not write {path} ({exc.strerror or exc}); the previous file, if any, is unchanged"
            ) from exc
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def save_checkpoint(path, *, model_name: str, config: dict, state_dict, representation: str, extra: dict | None = None) -> Path:
    """Write a checkpoint atomically (temp file + fsync + rename) and return its path."""
    import torch

    from disentbench import __version__

    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "disentbench_version": __version__,
        "model_name": str(model_name),
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "representation": str(representation),
        "extra": dict(extra or {}),
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def is_torchscript(path) -> bool:
    """True if ``path`` is a TorchScript archive (``torch.jit.save``), which holds code next to its data."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.split("/", 1)[-1].startswith("code/") or n.endswith("/constants.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


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

    Checks: the path is a file; it is a torch file that unpickles to tensors and plain data only;
    ``format`` and ``format_version``; the model name is registered; the state_dict keys and shapes
    are exactly those of the model its config describes.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if is_torchscript(path):
        raise CheckpointError(f"{path}: is a TorchScript archive, not a disentbench checkpoint (use load_encoder)")
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a disentbench checkpoint (format {found!r}, expected {FORMAT!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format_version {ckpt.get('format_version')!r} (this disentbench reads {FORMAT_VERSION})"
        )
    for key, kind in (("model_name", str), ("config", dict), ("state_dict", dict), ("representation", str), ("extra", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} missing or not a {kind.__name__}")
    from disentbench.models import MODEL_NAMES

    if ckpt["model_name"] not in MODEL_NAMES:
        raise CheckpointError(f"{path}: unknown model {ckpt['model_name']!r}; known models: {', '.join(MODEL_NAMES)}")
    _check_state_dict(path, ckpt)
    return ckpt


def _check_state_dict(path: Path, ckpt: dict) -> None:
    import torch

    from disentbench.models import build_model

    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build_model(ckpt["config"]).state_dict().items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model config: {exc}") from None
    got = ckpt["state_dict"]
    if any(not isinstance(v, torch.Tensor) for v in got.values()):
        raise CheckpointError(f"{path}: state_dict holds values that are not tensors")
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if tuple(got[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong:
            parts.append("wrong shapes " + ", ".join(f"{k} {tuple(got[k].shape)} != {expected[k]}" for k in wrong[:5]))
        raise CheckpointError(f"{path}: state_dict does not match the {ckpt['model_name']!r} config: " + "; ".join(parts))


FINAL_NAME = "model.pt"
RESUME_NAME = "checkpoint.pt"


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


def model_from_checkpoint(ckpt: dict):
    """Rebuild the model of a loaded checkpoint and load its weights (strict)."""
    from disentbench.models import build_model

    model = build_model(ckpt["config"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    return model


def torchscript_encoder(model):
    """A scripted module ``images (B, C, 64, 64) in [0, 1] → codes (B, d)`` from a model's encoder."""
    import torch

    from disentbench.models.conv import ConvEncoder

    class CodeEncoder(torch.nn.Module):
        def __init__(self, encoder: ConvEncoder):
            super().__init__()
            self.features = encoder.features
            self.dense = encoder.dense
            self.latent_dim = encoder.latent_dim

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dense(self.features(x))[:, : self.latent_dim]

    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript in favour of torch.export
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(CodeEncoder(model.encoder).eval())


def export_torchscript(checkpoint_path, out_path) -> Path:
    """Write the encoder of a checkpoint as TorchScript (atomically) and return the output path."""
    import torch

    model = model_from_checkpoint(load_checkpoint(resolve_checkpoint(checkpoint_path))).eval()
    scripted = torchscript_encoder(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return atomic_write(out_path, lambda fh: torch.jit.save(scripted, fh))


__all__ = [
    "FORMAT", "FORMAT_VERSION", "CheckpointError", "CheckpointWriteError", "atomic_write", "save_checkpoint",
    "load_checkpoint", "model_from_checkpoint", "resolve_checkpoint", "FINAL_NAME", "RESUME_NAME", "is_torchscript", "torchscript_encoder", "export_torchscript",
]
