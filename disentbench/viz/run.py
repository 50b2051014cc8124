"""What a report draws from: a finished run folder, its score record, the codes of the evaluated grid sample.

The record must score this run's model (its ``model_source.sha256`` is the checkpoint's content hash); the grid
sample is the record's own (``sample_indices(n_grid, n_points, seed)``) and its codes come from the evaluation's
code cache (encoded only when the cache lacks them). A model has a decoder when it defines ``decode(codes)`` with
one argument (the auto-encoders, ``decoder-on-frozen``); a ``decoder-on-frozen`` run trained on this run's encoder
can lend its decoder to a model without one.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: the score record ``disentbench report`` reads when no ``--record`` is given
RECORD_NAME = "record.json"


class ReportError(ValueError):
    """A run, record or decoder the report cannot use; the message says why in one line."""


@dataclass
class RunView:
    """A run as the report sees it. ``decode`` maps codes (n, d) to float images (n, C, 64, 64) in [0, 1], or is
    None; ``decoder_source`` says whose decoder it is; ``own_decoder``: the model's own (not a borrowed one)."""

    run_dir: Path
    model: Any
    record: dict
    dataset: Any
    indices: np.ndarray
    classes: np.ndarray
    codes: np.ndarray
    log: list[dict]
    decode: Callable[[np.ndarray], np.ndarray] | None
    decoder_source: str | None
    own_decoder: bool

    @property
    def factor_names(self) -> list[str]:
        return list(self.dataset.factor_space.names)

    def images(self, positions: np.ndarray) -> np.ndarray:
        """Float images (n, C, 64, 64) in [0, 1] of sample positions (rows of :attr:`codes`)."""
        from disentbench.evaluation.codes import unit_images

        return unit_images(self.dataset.images(self.indices[np.asarray(positions)]), self.dataset)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Codes of float images with the run's model (the representation the record scored)."""
        return _encode(self.model, images, self.record["model_source"].get("representation"))


def _encode(model, images: np.ndarray, representation: str | None) -> np.ndarray:
    import torch

    x = torch.as_tensor(images, dtype=torch.float32)
    with torch.no_grad():
        if representation and representation != model.representation:
            return model.representations(x)[representation].float().numpy()
        return model.encode(x).float().numpy()


def decoder_of(model) -> Callable[[np.ndarray], np.ndarray] | None:
    """``codes -> images`` through the model's ``decode(codes)``; None when it has no one-argument decoder."""
    method = getattr(model, "decode", None)
    if not callable(method) or len(inspect.signature(method).parameters) != 1:
        return None

    def decode(codes: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = method(torch.as_tensor(np.asarray(codes), dtype=torch.float32))
        return out.clamp(0, 1).float().numpy()

    return decode


def read_log(path: Path) -> list[dict]:
    """The JSON lines of a run's ``log.jsonl`` (a torn last line is skipped); [] when absent."""
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def load_run(run_dir, *, dataset=None, record: str | Path | None = None, decoder_run: str | Path | None = None,
             progress: bool = False) -> RunView:
    """Open ``run_dir`` (a finished run folder) with its score record (default ``RUN_DIR/record.json``) and the
    codes of the record's grid sample. ``dataset``: a name checked against the record's, or a dataset object
    (default: the registered dataset the record names); ``decoder_run``: a ``decoder-on-frozen`` run trained on
    this run."""
    from disentbench.checkpoint import resolve_checkpoint
    from disentbench.evaluation import EvaluationError, cached_codes, open_model, read_record, sample_indices
    from disentbench.models import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"run folder not found: {run_dir}")
    try:
        model, ckpt = load_model(run_dir)
    except FileNotFoundError as exc:
        raise ReportError(str(exc)) from None
    record_path = Path(record) if record is not None else run_dir / RECORD_NAME
    if not record_path.is_file():
        raise ReportError(f"no score record for {run_dir}: {record_path} not found; write one with `disentbench "
                          f"evaluate --model {run_dir} --dataset NAME --out {run_dir / RECORD_NAME}` or pass --record")
    try:
        rec = read_record(record_path)
    except EvaluationError as exc:
        raise ReportError(str(exc)) from None
    representation = rec.get("model_source", {}).get("representation")
    named = representation if representation and representation != model.representation else None
    source = open_model(resolve_checkpoint(run_dir), named)
    if rec.get("model_source", {}).get("sha256") != source.sha256:
        raise ReportError(f"{record_path} scores another model than {run_dir} (the model's content sha256 differs)")
    name = dataset if dataset is None or isinstance(dataset, str) else dataset.name
    if name is not None and name != rec["dataset"]:
        raise ReportError(f"{record_path} scores {rec['dataset']!r}, not {name!r}; omit --dataset or pass the "
                          "record of that dataset")
    if dataset is None or isinstance(dataset, str):
        from disentbench.data import get_dataset

        data = get_dataset(rec["dataset"])
    else:
        data = dataset
    if str(data.version) != rec["dataset_version"]:
        raise ReportError(f"{record_path} scores {rec['dataset']} version {rec['dataset_version']}, this machine has "
                          f"version {data.version}")
    indices = sample_indices(data.factor_space.n_points, rec["n_points"], rec["seed"])
    codes, _ = cached_codes(source, data, indices, progress=progress)
    decode = decoder_of(model)
    own_decoder = decode is not None
    decoder_source = f"the {ckpt['model_name']} model's decoder" if own_decoder else None
    if decoder_run is not None:
        decode, decoder_source = _borrowed_decoder(Path(decoder_run), model, data, named)
    return RunView(run_dir, model, rec, data, indices, data.factor_space.index_to_classes(indices),
                   np.asarray(codes, dtype=np.float32), read_log(run_dir / "log.jsonl"), decode, decoder_source,
                   own_decoder)


def _borrowed_decoder(path: Path, model, dataset, representation: str | None):
    """The decoder of a run trained on ``model``'s frozen codes, checked: it encodes a few images as ``model``."""
    from disentbench.evaluation.codes import unit_images
    from disentbench.models import load_model

    if not path.exists():
        raise ReportError(f"decoder run not found: {path}")
    other, ckpt = load_model(path)
    decode = decoder_of(other)
    if decode is None:
        raise ReportError(f"{path} is a {ckpt['model_name']!r} run without a decode(codes) decoder")
    probe = unit_images(dataset.images(np.arange(8)), dataset)
    if other.code_dim != model.code_dim or not np.allclose(_encode(other, probe, representation),
                                                           _encode(model, probe, representation), atol=1e-5):
        raise ReportError(f"{path} was not trained on this run's encoder (its codes differ)")
    return decode, f"the decoder of the {ckpt['model_name']} run {path}"
