"""Factor classifiers: the seed-004 conv encoder (Table 2) with one linear classification head per factor, trained
with cross-entropy on the factor classes, and optionally SHADE's entropy regulariser (seed 001) on the
pre-activations of every encoder layer.

One class, two registry names that differ in one setting (``shade_weight``):

- ``kf-teacher`` (``shade_weight = 0``): the teacher of knowledge factorisation (seed 000, supplementary sec. 3.2
  and Table 4: the 6-layer CNN with FC 10, pretrained as a multi-task classifier; Adam 1e-4, weight decay 1e-4,
  20 epochs, lr ×0.1 at epochs 10 and 15, sec. 3.4). It is also SHADE's weight-0 baseline.
- ``shade``: the same network and budget with loss ``Σ_j CE_j + w·Ω_SHADE``.

SHADE (thesis of seed 001, 02_shade.tex and appendix 10_shade.tex, Algorithm A.1, boxed Ω): for every unit of every
layer with pre-activation h, p(Z=1|h) = sigmoid(h) and

    Ω = Σ_layers Σ_units (1/K) Σ_k Σ_{z∈{0,1}} p(z|h_k) (h_k − μ^z)²,

with μ^z the moving averages of Algorithm A.1, held as buffers (no gradient, checkpointed in the state_dict) and
updated after each batch, p^z first and μ^z with the new p^z:

    p^z ← λ p^z + (1 − λ) mean_k p(z|h_k);    μ^z ← λ μ^z + (1 − λ) mean_k p(z|h_k) h_k / p^z,

initialised μ⁰ = −1, μ¹ = 1, p⁰ = p¹ = 0.5, λ = 0.8. Only p¹ is stored: p⁰ = 1 − p¹ holds at every step because
p(0|h) = 1 − p(1|h) and both start at 0.5. [gap] choices: the mean over the batch, the sum over units; a conv
channel is a unit and its spatial positions are extra samples; the layers are the six convolutions and the dense
latent (the linear factor heads are the classifier's output, not a representation layer).

The scored representation is the d-dim encoder output (the input of the linear heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.models.base import Batch, Model, check_finite
from disentbench.models.blocks import ENCODER_CHANNELS, ConvEncoder, initialise
from disentbench.models.multitask import EncoderConfig
from disentbench.models.registry import register_model

SEED_000 = "Seed 000 (Yang et al. 2022, Factorizing knowledge in neural networks)"
SEED_001 = "Seed 001 (Robert 2021, thesis: SHADE, 02_shade.tex and 10_shade.tex Algorithm A.1)"
NEEDS = ("images", "factors")
SHADE_INIT = {"p1": 0.5, "mu0": -1.0, "mu1": 1.0}


# -- the schedule shared with the KF students ------------------------------------------------------------------
@dataclass(frozen=True)
class StepSchedule:
    """Adam with L2 weight decay (``weight_decay`` added to the gradient, as torch.optim.Adam) and the step schedule
    lr · lr_gamma^(number of ``lr_milestones`` epochs passed) (seed 000 supp. sec. 3.4)."""

    lr: float
    betas: tuple[float, ...]
    weight_decay: float
    lr_milestones: tuple[int, ...]
    lr_gamma: float

    def __post_init__(self):
        if list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ValueError(f"key 'lr_milestones' must be increasing epochs, got {list(self.lr_milestones)}")


def scheduled_adam(params, schedule: StepSchedule) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=schedule.lr, betas=tuple(schedule.betas), weight_decay=schedule.weight_decay)


def set_step_lr(optimizer: torch.optim.Optimizer, schedule: StepSchedule, epoch: int) -> None:
    """Set the learning rate of zero-based ``epoch``: ×lr_gamma at each milestone reached (MultiStepLR)."""
    lr = schedule.lr * schedule.lr_gamma ** sum(epoch >= m for m in schedule.lr_milestones)
    for group in optimizer.param_groups:
        group["lr"] = lr


# -- factor heads ----------------------------------------------------------------------------------------------
class FactorHeads(nn.ModuleList):
    """One linear classifier per factor: codes (B, d) → list of logits (B, n_j)."""

    def __init__(self, in_dim: int, factor_sizes: Sequence[int]):
        super().__init__(nn.Linear(in_dim, int(n)) for n in factor_sizes)

    def forward(self, codes: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Logits per factor from one code (B, d) shared by every head, or one code per head."""
        if isinstance(codes, torch.Tensor):
            codes = [codes] * len(self)
        return [head(c) for head, c in zip(self, codes)]


def factor_cross_entropy(logits: Sequence[torch.Tensor], factors: torch.Tensor) -> torch.Tensor:
    """Σ_j CE(logits_j, y_j), each the batch mean."""
    return sum(F.cross_entropy(lg, factors[:, j]) for j, lg in enumerate(logits))


def correct_per_factor(logits: Sequence[torch.Tensor], factors: torch.Tensor) -> torch.Tensor:
    """Number of correct arg-max predictions per factor, (J,) float64."""
    return torch.stack([(lg.argmax(dim=1) == factors[:, j]).sum() for j, lg in enumerate(logits)]).double()


def within_class_variance_ratio(codes: torch.Tensor, classes: torch.Tensor) -> float:
    """Mean over factors j of Σ_d Var(code_d | y_j) / Σ_d Var(code_d): 0 when the codes are constant within each
    class of every factor, 1 when they carry no class information (the quantity SHADE lowers, H(Y | C))."""
    codes = codes.double()
    total = codes.var(dim=0, unbiased=False).sum()
    ratios = []
    for j in range(classes.shape[1]):
        within = torch.zeros((), dtype=torch.float64, device=codes.device)
        for c in classes[:, j].unique():
            members = codes[classes[:, j] == c]
            within = within + members.var(dim=0, unbiased=False).sum() * len(members)
        ratios.append(within / len(codes) / total.clamp_min(1e-12))
    return float(torch.stack(ratios).mean())


# -- SHADE -----------------------------------------------------------------------------------------------------
def unit_samples(h: torch.Tensor) -> torch.Tensor:
    """Pre-activations as (samples, units): a dense layer's (B, D) as is; a conv layer's (B, C, H, W) as
    (B·H·W, C), a channel being a unit and its positions extra samples ([gap])."""
    return h if h.dim() == 2 else h.movedim(1, -1).reshape(-1, h.shape[1])


def shade_omega(h: torch.Tensor, mu0: torch.Tensor, mu1: torch.Tensor) -> torch.Tensor:
    """Ω of one layer (thesis 10_shade.tex, boxed equation): Σ_units mean_k Σ_z p(z|h_k)(h_k − μ^z)²,
    p(1|h) = sigmoid(h). ``h``: (samples, units); ``mu0``, ``mu1``: (units,)."""
    p1 = torch.sigmoid(h)
    return (p1 * (h - mu1).pow(2) + (1 - p1) * (h - mu0).pow(2)).mean(dim=0).sum()


def shade_moving_averages(h: torch.Tensor, p1: torch.Tensor, mu0: torch.Tensor, mu1: torch.Tensor, decay: float):
    """One step of Algorithm A.1 (thesis 10_shade.tex) on a batch ``h`` (samples, units): (p¹, μ⁰, μ¹) updated,
    p first, then μ^z with the new p^z (p⁰ = 1 − p¹)."""
    q1 = torch.sigmoid(h)
    p1 = decay * p1 + (1 - decay) * q1.mean(dim=0)
    mu1 = decay * mu1 + (1 - decay) * (q1 * h).mean(dim=0) / p1
    mu0 = decay * mu0 + (1 - decay) * ((1 - q1) * h).mean(dim=0) / (1 - p1)
    return p1, mu0, mu1


class ShadeAverages(nn.Module):
    """The moving averages p¹, μ⁰, μ¹ of one layer's units, as buffers (no gradient, not parameters)."""

    def __init__(self, units: int):
        super().__init__()
        for name, value in SHADE_INIT.items():
            self.register_buffer(name, torch.full((units,), value))

    def omega(self, h: torch.Tensor) -> torch.Tensor:
        return shade_omega(unit_samples(h), self.mu0, self.mu1)

    @torch.no_grad()
    def update(self, h: torch.Tensor, decay: float) -> None:
        for buffer, value in zip((self.p1, self.mu0, self.mu1),
                                 shade_moving_averages(unit_samples(h), self.p1, self.mu0, self.mu1, decay)):
            buffer.copy_(value)


def preactivations(encoder: ConvEncoder, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(code, pre-activations of the six convolutions and of the dense latent) of the seed-004 encoder."""
    hs = []
    for layer in encoder.features:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            hs.append(x)
    code = encoder.dense(x)
    return code, hs + [code]


# -- the model -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FactorClassifierConfig(StepSchedule, EncoderConfig):
    """Encoder (``latent_dim``, ``activation``, ``init``), the step schedule, SHADE's weight w (0: no regulariser)
    and its moving-average rate λ (``shade_decay``)."""

    shade_weight: float
    shade_decay: float

    def __post_init__(self):
        EncoderConfig.__post_init__(self)
        StepSchedule.__post_init__(self)
        if self.shade_weight < 0 or not 0.0 <= self.shade_decay < 1.0:
            raise ValueError(f"keys 'shade_weight' >= 0 and 'shade_decay' in [0, 1) required, got "
                             f"{self.shade_weight}, {self.shade_decay}")


@register_model("shade", family="factor-classifier", needs=NEEDS, config=FactorClassifierConfig,
                source=f"{SEED_001}; network: seed 004 Table 2 + a linear head per factor; budget: {SEED_000}, "
                       "supp. sec. 3.4")
@register_model("kf-teacher", family="factor-classifier", needs=NEEDS, config=FactorClassifierConfig,
                source=f"{SEED_000}, supp. sec. 3.2, 3.4 and Table 4 (the 6-layer teacher); SHADE's weight-0 baseline")
class FactorClassifier(Model):
    """Seed-004 encoder + a linear head per factor, loss Σ_j CE_j + w·Ω_SHADE (w = 0: the KF teacher)."""

    representation = "encoder output (input of the linear factor heads)"

    def __init__(self, config: FactorClassifierConfig, context):
        super().__init__(config, context)
        if not context.factor_sizes:
            raise ValueError("a factor classifier needs the factor sizes (context.factor_sizes)")
        self.encoder = ConvEncoder(context.channels, config.latent_dim, config.activation)
        self.heads = FactorHeads(config.latent_dim, context.factor_sizes)
        self.shade = nn.ModuleList(ShadeAverages(units) for units in (*ENCODER_CHANNELS, config.latent_dim))
        initialise(self, config.init)

    @property
    def code_dim(self) -> int:
        return self.config.latent_dim

    def configure_optimizers(self):
        return {"model": scheduled_adam(self.parameters(), self.config)}

    def on_epoch(self, epoch: int) -> None:
        set_step_lr(self.optimizers["model"], self.config, epoch)

    def encode(self, images):
        return self.encoder.code(images)

    def logits(self, codes: torch.Tensor) -> list[torch.Tensor]:
        """Logits per factor of the linear heads at ``codes`` (the output of :meth:`encode`)."""
        return self.heads(codes)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One Adam step on Σ_j CE_j + w·Ω (Ω with the averages before this batch), then Algorithm A.1's update.
        Ω is computed and logged at w = 0 too, so the baseline's Ω can be compared."""
        code, hs = preactivations(self.encoder, batch.images)
        ce = factor_cross_entropy(self.logits(code), batch.factors)
        omega = sum(avg.omega(h) for avg, h in zip(self.shade, hs))
        loss = ce + self.config.shade_weight * omega
        check_finite("loss", loss)
        self.update("model", loss)
        for avg, h in zip(self.shade, hs):
            avg.update(h.detach(), self.config.shade_decay)
        return {"loss": loss.detach(), "cross_entropy": ce.detach(), "shade": omega.detach()}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test accuracy per factor and their mean; the within-class / total variance ratio of the codes."""
        self.eval()
        codes = torch.cat([self.encode(b.images) for b in data.batches(data.test, self.needs)])
        self.train()
        factors = data.factors[data.test]
        accuracy = correct_per_factor(self.logits(codes), factors) / len(factors)
        return {"test_accuracy": float(accuracy.mean()), "test_accuracy_per_factor": accuracy.tolist(),
                "within_class_variance_ratio": within_class_variance_ratio(codes, factors)}
