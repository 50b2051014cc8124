"""Model sources: what ``evaluate`` accepts as a model, opened and checked.

* a disentbench checkpoint or run folder (rebuilt from its config, loaded with ``weights_only=True``);
* an exported safetensors folder (``model.safetensors`` + ``config.json``; rebuilt the same way, no pickle);
* an encoder program: a ``torch.export`` archive (``.pt2``, audited by :mod:`disentbench.exchange`) or TorchScript,
  float images in [0, 1], shape (B, C, 64, 64) -> codes (B, d);
* a precomputed code file: ``.npz`` with ``codes`` (n, d) and ``indices`` (n,) into the dataset's
  factor grid (optional string fields ``dataset`` and ``dataset_version`` are checked);
* ``ground-truth``: the codes are the factors themselves, normalised to [0, 1] (the task networks' inputs) —
  the upper anchor of every metric and the "ground truth" row of seed 004's Table 1.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: the pseudo-model whose codes are the normalised ground-truth factors
GROUND_TRUTH = "ground-truth"


class EvaluationError(ValueError):
    """A model file, code file or dataset that cannot be evaluated; the message says why."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of a model config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ModelSource:
    """A model file opened for evaluation.

    ``kind`` is ``checkpoint``, ``safetensors``, ``pt2``, ``torchscript``, ``codes`` or ``ground-truth``; ``encoder`` maps float images in
    [0, 1] (B, C, 64, 64) to codes (B, d) (None for code files and the ground truth); ``info`` holds what the
    loader reported. ``sha256`` identifies the model for record ids and the code cache: for a checkpoint (or its
    safetensors export) the hash of its content (name, config, context, tensors), so bit-identical trainings share it although ``torch.save``
    makes their file bytes differ; for other files the hash of the bytes.
    """

    path: Path
    kind: str
    sha256: str
    model_type: str
    config_hash: str
    encoder: Callable[[np.ndarray], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _is_npz(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(n.endswith(".npy") for n in names)


def check_npz(path: Path) -> None:
    """Raise :class:`EvaluationError` naming ``path`` unless it is an npz archive (a zip of ``.npy`` arrays)."""
    if not _is_npz(path):
        raise EvaluationError(f"{path}: not an npz archive (an .npz is a zip of .npy arrays, e.g. from numpy.savez)")


def _resolve_model_path(path: Path) -> Path:
    """A run folder -> its ``model.pt``; an exported safetensors folder as is; any other folder is an error."""
    from disentbench.checkpoint import FINAL_NAME, RESUME_NAME

    if not path.is_dir() or ((path / "model.safetensors").is_file() and (path / "config.json").is_file()):
        return path
    if (path / FINAL_NAME).is_file():
        return path / FINAL_NAME
    hint = f" (an unfinished run: only {RESUME_NAME})" if (path / RESUME_NAME).is_file() else ""
    raise EvaluationError(f"{path}: is a directory, neither a finished run folder ({FINAL_NAME}){hint} nor an exported "
                          "safetensors folder (model.safetensors + config.json)")


def open_model(path: Path, representation: str | None = None) -> ModelSource:
    """Open a checkpoint or run folder, a ``.pt2`` program, a safetensors folder, a TorchScript encoder or a code
    file (or the ``ground-truth`` pseudo-model); raise a clear error for anything else. ``representation`` picks a
    named alternative representation of a checkpoint's model (its identity, and so the code cache, includes it)."""
    path = Path(path)
    if representation is not None and (str(path) == GROUND_TRUTH or path.suffix == ".npz"):
        raise EvaluationError(f"{path}: --representation applies to checkpoints and run folders")
    if str(path) == GROUND_TRUTH and not path.exists():
        return ModelSource(path, GROUND_TRUTH, hashlib.sha256(GROUND_TRUTH.encode()).hexdigest(), GROUND_TRUTH, "",
                           info={"representation": "normalised factors"})
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    path = _resolve_model_path(path)
    if path.suffix == ".npz" or _is_npz(path):
        check_npz(path)
        sha = file_sha256(path)
        return ModelSource(path, "codes", sha, "codes", sha[:16])
    from disentbench.models import load_encoder

    encoder, info = load_encoder(path, representation=representation)
    if info["source"] in ("torchscript", "pt2"):
        sha = file_sha256(path)
        return ModelSource(path, info["source"], sha, info["source"], sha[:16], encoder, info)
    chash = info.get("config_hash") or config_hash(info["config"])
    sha = info["content_sha256"]
    if representation is not None:
        sha = hashlib.sha256(f"{sha}|{representation}".encode()).hexdigest()
    return ModelSource(path, info["source"], sha, info["model_name"], chash, encoder, info)


def check_codes(codes: np.ndarray, what: str) -> np.ndarray:
    """Raise :class:`EvaluationError` for codes that are not a finite 2-D numeric array."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] == 0 or not np.issubdtype(codes.dtype, np.number):
        raise EvaluationError(f"{what}: codes must be a numeric (n, d) array, got shape {codes.shape}, dtype {codes.dtype}")
    bad = ~np.isfinite(codes)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise EvaluationError(
            f"{what}: {int(bad.sum())} code values are NaN or infinite (first at row {rows[0]}, dimension {cols[0]}; "
            f"dimensions affected: {sorted(set(cols.tolist()))[:10]}); the model diverged or the file is corrupt"
        )
    return codes


def load_code_file(path: Path, dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, indices)`` from a code file, checked against ``dataset``."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: not a readable .npz code file ({exc})") from None
    with data:
        missing = [k for k in ("codes", "indices") if k not in data.files]
        if missing:
            raise EvaluationError(f"{path}: a code file needs arrays 'codes' and 'indices'; missing {missing} (has {data.files})")
        for key, expected in (("dataset", dataset.name), ("dataset_version", dataset.version)):
            if key in data.files:
                value = str(data[key])
                if value != expected:
                    raise EvaluationError(
                        f"{path}: code file is for {key} {value!r} but you asked to evaluate on {expected!r}"
                    )
        codes, indices = data["codes"], data["indices"]
    codes = check_codes(codes, str(path))
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise EvaluationError(f"{path}: 'indices' must be a 1-D integer array, got shape {indices.shape}, dtype {indices.dtype}")
    if len(indices) != len(codes):
        raise EvaluationError(f"{path}: {len(codes)} code rows but {len(indices)} indices")
    n_grid = dataset.factor_space.n_points
    if len(indices) and (indices.min() < 0 or indices.max() >= n_grid):
        raise EvaluationError(
            f"{path}: indices range over [{indices.min()}, {indices.max()}] but {dataset.name} has {n_grid} grid points; "
            "is this a code file for another dataset?"
        )
    if len(np.unique(indices)) != len(indices):
        raise EvaluationError(f"{path}: 'indices' has repeated grid points")
    return codes.astype(np.float32, copy=False), indices.astype(np.int64)
