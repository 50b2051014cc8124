"""The multi-task study's models (seed 004, sec. 3.2.1 and 4.1): the random encoder, single-task, multi-head and
one-head networks, and the Table-1 RMSE that every multi-task protocol reports.

Multi-task regression, app. C.1: loss = Σ_t mean_b (ŷ_bt − y_bt)² on raw targets. With ``standardize_targets``
(smoke budgets only) the network predicts ``(y − μ_t) / σ_t`` (train-split mean and std per task), i.e. the raw
objective with task t weighted by 1/σ_t²; errors are always reported on the raw scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from disentbench.models.base import Batch, Model, adam, check_finite
from disentbench.models.blocks import ConvEncoder, TaskHeads, initialise
from disentbench.models.config import choice
from disentbench.models.registry import ROW_MEAN_OVER_TASKS, register_model

SEED_004 = "Seed 004 (On the relationship between disentanglement and multi-task learning)"
ACTIVATIONS = ("relu", "tanh")
INITS = ("default", "kaiming")


def table1_rmse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task test RMSE (T,) as float64: RMSE_t = √(mean_i (ŷ_it − y_it)²).

    Seed 004's Table 1 gives one RMSE per representation and dataset without saying how tasks are aggregated; every
    multi-task protocol of disentbench reports the **mean over tasks of the per-task RMSE** ([gap]: each task's error
    stays in its own units, and one badly predicted task cannot hide behind the others' squares).
    """
    return torch.sqrt(((predictions - targets) ** 2).mean(dim=0)).double()


@dataclass(frozen=True)
class EncoderConfig:
    """The seed-004 conv encoder (Table 2): ``latent_dim`` outputs, ``activation`` relu|tanh, ``init`` default|kaiming."""

    init: str
    latent_dim: int
    activation: str

    def __post_init__(self):
        choice(self.init, INITS, "init")
        choice(self.activation, ACTIVATIONS, "activation")
        if self.latent_dim < 1:
            raise ValueError(f"key 'latent_dim' must be >= 1, got {self.latent_dim}")


@dataclass(frozen=True)
class HeadsConfig:
    """Table-3 heads and their Adam optimiser; ``head_mode`` multi (one head per task) | one (one head, T outputs)."""

    head_mode: str
    head_hidden: tuple[int, ...]
    head_activation: str
    standardize_targets: bool
    lr: float
    betas: tuple[float, ...]

    def __post_init__(self):
        choice(self.head_mode, ("multi", "one"), "head_mode")
        choice(self.head_activation, ACTIVATIONS, "head_activation")


@dataclass(frozen=True)
class MultiTaskConfig(HeadsConfig, EncoderConfig):
    def __post_init__(self):
        EncoderConfig.__post_init__(self)
        HeadsConfig.__post_init__(self)


@register_model("random", family="multi-task", needs=(), config=EncoderConfig,
                source=f"{SEED_004}, sec. 4.1 and app. C.2 (PyTorch default initialisation, never trained); Table 2")
class RandomEncoder(Model):
    """The untrained encoder: the seeded default initialisation, never trained (the random baseline)."""

    trainable = False

    def __init__(self, config: EncoderConfig, context):
        super().__init__(config, context)
        self.encoder = ConvEncoder(context.channels, config.latent_dim, config.activation)
        initialise(self, config.init)

    @property
    def code_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, images):
        return self.encoder.code(images)


class TaskRegression(Model):
    """Shared by every model with task heads: target standardisation, the task loss and the test-split RMSEs.
    Subclasses define ``self.heads`` and :meth:`predict` (targets from a batch)."""

    def prepare(self, data) -> None:
        y = data.targets[data.train]
        if self.config.standardize_targets:
            self.shift, self.scale = y.mean(dim=0), y.std(dim=0).clamp_min(1e-8)
        else:
            self.shift, self.scale = torch.zeros_like(y[0]), torch.ones_like(y[0])

    def predict(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = (batch.targets - self.shift) / self.scale
        loss = (self.predict(batch) - target).pow(2).mean(dim=0).sum()
        check_finite("task loss", loss)
        self.update("model", loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test RMSE per task on the raw scale (:func:`table1_rmse`) and their mean, ``test_rmse``."""
        self.eval()
        pred = torch.cat([self.predict(b) * self.scale + self.shift for b in data.batches(data.test, self.needs)])
        self.train()
        rmse = table1_rmse(pred, data.targets[data.test]).cpu()
        return {"test_rmse": float(rmse.mean()), "test_rmse_per_task": [float(v) for v in rmse]}


@register_model("one-head", family="multi-task", needs=("images", "targets"), config=MultiTaskConfig,
                source=f"{SEED_004}, sec. 4.1 (Fig. 4: one head with T outputs); Tables 2-3; app. C.1")
@register_model("multi-head", family="multi-task", needs=("images", "targets"), config=MultiTaskConfig,
                source=f"{SEED_004}, sec. 3.2.1 and 4.1; Tables 2-3; app. C.1")
@register_model("single-task", family="multi-task", needs=("images", "targets"), config=MultiTaskConfig,
                row=ROW_MEAN_OVER_TASKS,
                source=f"{SEED_004}, sec. 4.1 and Table 5 (one model per task, [data] task_index picks the task; a "
                       f"leaderboard row is the mean over the task set's models: \"single-mean\"); app. C.1")
class MultiTaskNet(TaskRegression):
    """Shared conv encoder + task heads, trained end to end: ŷ = heads(E(x)), shape (B, T)."""

    def __init__(self, config: MultiTaskConfig, context):
        super().__init__(config, context)
        if not context.n_tasks:
            raise ValueError("a multi-task network needs the number of tasks (context.n_tasks)")
        self.encoder = ConvEncoder(context.channels, config.latent_dim, config.activation)
        self.heads = TaskHeads(config.latent_dim, context.n_tasks, config.head_mode, config.head_hidden,
                               config.head_activation)
        initialise(self, config.init)

    @property
    def code_dim(self) -> int:
        return self.config.latent_dim

    def configure_optimizers(self):
        return {"model": adam(self.parameters(), self.config.lr, self.config.betas)}

    def encode(self, images):
        return self.encoder.code(images)

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.heads(self.encode(batch.images))
