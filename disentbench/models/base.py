"""What every registered model is: an ``nn.Module`` that owns its objective.

A model is built from its config dataclass and a :class:`ModelContext` (what the data decides: image channels,
number of tasks, factor sizes, the frozen upstream model of a staged run). The training loop knows no model by name;
it calls, in this order::

    optimizers = model.configure_optimizers()      # name -> torch optimiser; the loop checkpoints every one
    model.prepare(train_data)                      # once, before the first step (e.g. target statistics)
    model.on_epoch(epoch)                          # per-epoch schedules
    losses = model.train_step(batch)              # one minibatch: every update of every optimiser
    metrics = model.evaluate(test_data)            # its own protocol numbers on the test split

and evaluation and export call ``model.encode(images) -> codes``: the deterministic representation that is scored
(eval mode; the posterior mean for Gaussian encoders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

#: what a model can ask the loop to put in a :class:`Batch`
NEEDS = ("images", "factors", "targets", "upstream")
EVAL_BATCH = 256


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite before the update it would drive; the loop stops and keeps the last checkpoint."""


@dataclass
class Batch:
    """One minibatch, holding what the model declared it needs (the other fields are None).

    ``images``: float (B, C, 64, 64) in [0, 1]; ``factors``: int64 factor classes (B, K); ``targets``: float32 task
    targets (B, T); ``upstream``: float32 codes (B, d) of the frozen upstream model; ``step`` and ``epoch``: zero-based
    position of this update in the run; ``noise``: the run's seeded generator for sampling (reparameterisation,
    permutations), checkpointed by the loop.
    """

    images: torch.Tensor | None = None
    factors: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    upstream: torch.Tensor | None = None
    step: int = 0
    epoch: int = 0
    noise: torch.Generator | None = None

    def __len__(self) -> int:
        for value in (self.images, self.factors, self.targets, self.upstream):
            if value is not None:
                return len(value)
        return 0


@dataclass
class ModelContext:
    """What the data decides about a model: image ``channels``, ``n_tasks`` (task models), ``factor_sizes``
    (label models), and ``upstream`` — the frozen model a staged model builds on (its run given by ``--from``)."""

    channels: int
    n_tasks: int | None = None
    factor_sizes: tuple[int, ...] | None = None
    upstream: "Model | None" = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint; the upstream is stored as its registry name, config and context."""
        up = None
        if self.upstream is not None:
            up = {"name": self.upstream.name, "config": self.upstream.config_dict(),
                  "context": self.upstream.context.to_dict()}
        return {"channels": self.channels, "n_tasks": self.n_tasks,
                "factor_sizes": None if self.factor_sizes is None else list(self.factor_sizes), "upstream": up}


class Model(nn.Module):
    """Base class of registered models. ``name`` and ``info`` are set by :func:`~disentbench.models.register_model`
    on the instance at build time (one class may serve several registry names)."""

    name: str = ""
    #: what :meth:`encode` returns, in words (recorded in checkpoints and score records)
    representation: str = "encoder output"

    def __init__(self, config: Any, context: ModelContext):
        super().__init__()
        self.config = config
        self.context = context
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- the contract ------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Name -> optimiser over this model's trainable parameters (none for an untrained model)."""
        return {}

    def prepare(self, data) -> None:
        """Work done once before the first step, with the run's data (see :class:`~disentbench.training.data.RunData`)."""

    def on_epoch(self, epoch: int) -> None:
        """Per-epoch schedule hook (zero-based ``epoch``)."""

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One minibatch: every update of every optimiser. Returns detached scalars; key ``loss`` always present."""
        raise NotImplementedError(f"{self.name} is not trained")

    @torch.no_grad()
    def evaluate(self, data) -> dict[str, Any]:
        """This model's own protocol numbers on the test split of ``data`` (empty by default)."""
        return {}

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The deterministic representation (B, d) of float images (B, C, 64, 64) in [0, 1]."""
        raise NotImplementedError

    def representations(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named alternative representations (B, d_name) that evaluation can score besides :meth:`encode`
        (``evaluate --representation NAME``); none by default."""
        return {}

    #: False for models that are never trained (the random baseline): the loop runs no epoch
    trainable: bool = True

    @property
    def code_dim(self) -> int:
        """Width d of :meth:`encode`'s output."""
        raise NotImplementedError

    @property
    def needs(self) -> tuple[str, ...]:
        """What this model's batches hold (declared at registration)."""
        from disentbench.models.registry import get_model

        return get_model(self.name).needs

    # -- helpers for subclasses --------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        from disentbench.models.config import config_to_dict

        return config_to_dict(self.config)

    def update(self, optimizer: str, loss: torch.Tensor) -> None:
        """Zero the gradients of ``optimizer``, back-propagate ``loss``, step."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def check_finite(name: str, value: torch.Tensor) -> None:
    """Raise :class:`NonFiniteLoss` naming ``name`` unless the scalar ``value`` is finite."""
    if not torch.isfinite(value):
        raise NonFiniteLoss(f"{name} is {value.item()}")


def adam(params, lr: float, betas) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=float(lr), betas=tuple(float(b) for b in betas))


def chunks(positions: torch.Tensor, size: int = EVAL_BATCH) -> Iterator[torch.Tensor]:
    for start in range(0, len(positions), size):
        yield positions[start:start + size]


@torch.no_grad()
def encode_all(model: Model, images_of, n: int, device) -> torch.Tensor:
    """Codes (n, d) of ``model.encode`` over positions 0..n-1 (``images_of(positions)`` gives float images), in
    eval mode and chunks of :data:`EVAL_BATCH`; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    codes = torch.cat([model.encode(images_of(pos)) for pos in chunks(torch.arange(n, device=device))])
    model.train(was_training)
    return codes
