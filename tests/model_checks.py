"""Shared behavioural checks for the auto-encoder family's test files (one test file per model)."""

from __future__ import annotations

import numpy as np
import torch

from disentbench.data.base import GroundTruthDataset
from disentbench.factors import FactorSpace
from disentbench.models import ModelContext, build_model
from disentbench.training import resolve_spec, train


class TinySquares(GroundTruthDataset):
    """A 4×4×3 grid: a bright square at (x, y) of size s on a dark background."""

    name = "tiny-squares"
    version = "test"

    def __init__(self, channels: int = 1, sizes=(4, 4, 3)):
        self.channels = channels
        self._space = FactorSpace(("x", "y", "size"), sizes)

    @property
    def factor_space(self) -> FactorSpace:
        return self._space

    def _read(self, indices):
        classes = self._space.index_to_classes(indices)
        out = np.zeros((len(indices), 64, 64, self.channels), np.uint8)
        for i, (x, y, s) in enumerate(classes):
            w = 6 + 4 * s
            out[i, 8 + 10 * y: 8 + 10 * y + w, 8 + 10 * x: 8 + 10 * x + w, :] = 255
        return out


class Bands(GroundTruthDataset):
    """Three horizontal bands on a 64×64 grey image; factor k sets the grey level of band k, ``offset + step · class``."""

    version = "1"
    channels = 1

    def __init__(self, name: str, names, sizes, step: int, offset: int = 0):
        self.name, self.step, self.offset = name, step, offset
        self._space = FactorSpace(tuple(names), tuple(sizes))

    @property
    def factor_space(self) -> FactorSpace:
        return self._space

    def _read(self, indices):
        classes = self._space.index_to_classes(indices)
        out = np.zeros((len(indices), 64, 64, 1), np.uint8)
        for k, (lo, hi) in enumerate(((0, 21), (21, 42), (42, 64))):
            out[:, lo:hi] = (classes[:, k] * self.step + self.offset)[:, None, None, None]
        return out


def build(name: str, seed: int = 0, **config):
    """Model ``name`` from its smoke config with ``config`` overrides, seeded."""
    base = resolve_spec(name, tier="smoke", seed=0, dataset="x")["config"]
    torch.manual_seed(seed)
    return build_model(name, {**base, **config}, ModelContext(1))


def trained_weights(name: str, dataset, out, **config):
    """Final weights of a tiny seeded run of ``name`` with ``config`` overrides."""
    spec = resolve_spec(name, tier="smoke", seed=2, dataset=dataset.name, threads=1,
                        overrides={"subset": 0, "epochs": 1, "batch_size": 8, "checkpoint_every_steps": 100,
                                   **config})
    train(spec, out, dataset=dataset, progress=False)
    return torch.load(out / "model.pt", weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
