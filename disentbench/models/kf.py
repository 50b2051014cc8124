"""Knowledge factorisation (KF, seed 000: Yang et al. 2022, Factorizing knowledge in neural networks).

A frozen teacher (a ``kf-teacher`` run, ``--from RUN_DIR``: the seed-004 encoder with a linear head per factor) is
factorised into students: a common-knowledge network (CKN) giving z ∈ R^d and one task-specific network TSN_j per
factor giving a Gaussian t_j ∈ R^d (supp. eq. 20, 22). Heads H_j(z + t_j) predict factor j (eq. 23), auxiliary heads
H'_j(t_j) predict it from t_j alone (eq. 21). The loss minimised (supp. sec. 1.2 and the authors' ``kf.py``) is

    Σ_j CE(H_j(z + t_j), y_j) + w_t Σ_j BCE(H'_j(t_j), onehot(y_j)) − λ_feat Î_DV(P(f_T), z)
        + β Σ_j KL(q(t_j|x) || N(0, I)) + λ_kd Σ_j MSE(H_j(z + t_j), teacher logits_j),

with f_T the teacher's feature (its d-dim FC output), P = Linear → BatchNorm → ReLU → Linear a learned projection,
and Î_DV the Donsker–Varadhan bound (supp. eq. 14) with the cosine critic (:func:`dv_bound`).

The teacher is a frozen sub-module (its weights travel in this run's checkpoint). Its feature f_T is what its
``encode`` returns, so the loop computes it once for the whole run and feeds it as ``batch.upstream``; the teacher's
logits are its linear heads at f_T, so no teacher forward pass is needed per step.

The scored representation ([gap]) is the concatenation of the TSN means [μ_1 … μ_J]; :meth:`KnowledgeFactorisation.
representations` also gives z and every z + μ_j.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.models.base import Batch, Model, check_finite
from disentbench.models.blocks import ENCODER_CHANNELS, activation, initialise
from disentbench.models.config import choice
from disentbench.models.factor_classifier import (SEED_000, FactorHeads, StepSchedule, correct_per_factor,
                                                  factor_cross_entropy, scheduled_adam, set_step_lr)
from disentbench.models.multitask import INITS
from disentbench.models.registry import register_model
from disentbench.models.vae import gaussian_kl

TSN_STATS = ("per_sample", "batch")
ESTIMATORS = ("dv", "code_faithful")


# -- the InfoMax and InfoMin terms -------------------------------------------------------------------------------
def cosine_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """s_ij = cos(a_i, b_j), (B, B), after L2-normalising the rows (the critic of the authors' ``InfoMax_loss``)."""
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def dv_bound(a: torch.Tensor, b: torch.Tensor, estimator: str = "dv") -> torch.Tensor:
    """Donsker–Varadhan lower bound Î(a; b) = E_joint[s] − log E_marginal[exp s] (supp. eq. 14), s = cosine.

    ``dv``: mean_i s_ii − log mean_{i≠j} exp(s_ij) (pairs (a_i, b_i) from the joint, (a_i, b_j≠i) from the product
    of marginals). ``code_faithful``: the authors' ``InfoMax_loss``: trace(s)/B² − log mean_ij exp(s_ij·[i≠j]),
    which averages the joint term over B² entries and counts each diagonal entry as exp(0) = 1 in the marginal term.
    The cosine critic keeps s in [−1, 1], so Î ≤ 2: for identical unrelated vectors Î ≈ 1 − log mean_{i≠j} exp(s_ij).
    """
    s = cosine_scores(a, b)
    n = s.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=s.device)
    if estimator == "code_faithful":
        return s.diagonal().sum() / n**2 - torch.log(torch.exp(s.masked_fill(eye, 0.0)).mean())
    return s.diagonal().mean() - (torch.logsumexp(s[~eye], dim=0) - math.log(n * (n - 1)))


def batch_moment_kl(t: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, I)) with μ, σ² the batch mean and variance of each coordinate of t (supp. eq. 20):
    Σ_d −½(1 + log σ_d² − μ_d² − σ_d²) ([gap] the sum over d; the authors' 1-d branch averages)."""
    mean, var = t.mean(dim=0), t.var(dim=0, unbiased=False)
    return -0.5 * (1 + torch.log(var + 1e-8) - mean.pow(2) - var).sum()


# -- students ----------------------------------------------------------------------------------------------------
class StudentNet(nn.Module):
    """The first ``layers`` convolutions of the seed-004 encoder (4×4 / 2, channels 32, 32, 64, ...), average
    pooling to 1×1 and FC → ``out_dim`` (supp. Table 5 for 3 layers; 6 layers is Table 4, the pooling a no-op)."""

    def __init__(self, channels: int, out_dim: int, layers: int, activation_name: str = "relu"):
        super().__init__()
        convs: list[nn.Module] = []
        in_ch = channels
        for out_ch in ENCODER_CHANNELS[:layers]:
            convs += [nn.Conv2d(in_ch, out_ch, 4, 2, 1), activation(activation_name)]
            in_ch = out_ch
        self.net = nn.Sequential(*convs, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_ch, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def projection(in_dim: int, out_dim: int) -> nn.Sequential:
    """P: Linear → BatchNorm → ReLU → Linear, mapping the teacher feature to the CKN's width (authors' ``feat_fcs``)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim))


@dataclass(frozen=True)
class KFConfig(StepSchedule):
    """Students (``latent_dim``, ``student_layers`` 3|6, ``tsn_stats`` per_sample|batch, ``init``), the InfoMax
    estimator (dv|code_faithful) and the loss weights λ_feat, β, λ_kd, w_t (``task_weight``)."""

    init: str
    latent_dim: int
    student_layers: int
    tsn_stats: str
    infomax_estimator: str
    lambda_feat: float
    beta: float
    lambda_kd: float
    task_weight: float

    def __post_init__(self):
        super().__post_init__()
        choice(self.init, INITS, "init")
        choice(self.tsn_stats, TSN_STATS, "tsn_stats")
        choice(self.infomax_estimator, ESTIMATORS, "infomax_estimator")
        if self.student_layers not in (3, 6) or self.latent_dim < 1:
            raise ValueError(f"keys 'student_layers' in (3, 6) and 'latent_dim' >= 1 required, got "
                             f"{self.student_layers}, {self.latent_dim}")


@register_model("kf", family="knowledge-factorisation", needs=("images", "factors", "upstream"), config=KFConfig,
                upstream=("kf-teacher", "shade"),
                source=f"{SEED_000}: supp. eq. 14 (DV bound), 20-23 (TSN, heads), sec. 1.2 (IMB loss), sec. 3.2-3.4 "
                       "and Tables 4-5; authors' code (Adamdad/KnowledgeFactor) kf.py, kd_loss.py")
class KnowledgeFactorisation(Model):
    """Students factorising a frozen ``kf-teacher``: CKN z, Gaussian TSNs t_j, heads H_j(z + t_j) and H'_j(t_j)."""

    representation = "concatenated TSN means [mu_1 ... mu_J]"

    def __init__(self, config: KFConfig, context):
        super().__init__(config, context)
        self.upstream = context.upstream.requires_grad_(False)
        d, layers, sizes = config.latent_dim, config.student_layers, context.factor_sizes
        tsn_out = 2 * d if config.tsn_stats == "per_sample" else d
        self.ckn = StudentNet(context.channels, d, layers)
        self.tsns = nn.ModuleList(StudentNet(context.channels, tsn_out, layers) for _ in sizes)
        self.heads = FactorHeads(d, sizes)
        self.aux_heads = FactorHeads(d, sizes)
        self.projection = projection(self.upstream.code_dim, d)
        initialise(self.students(), config.init)

    def students(self) -> nn.ModuleList:
        """Every trained module (all but the frozen teacher)."""
        return nn.ModuleList([self.ckn, self.tsns, self.heads, self.aux_heads, self.projection])

    @property
    def code_dim(self) -> int:
        return self.config.latent_dim * len(self.tsns)

    def configure_optimizers(self):
        return {"model": scheduled_adam(self.students().parameters(), self.config)}

    def on_epoch(self, epoch: int) -> None:
        set_step_lr(self.optimizers["model"], self.config, epoch)

    def tsn_posteriors(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """(μ_j, log σ_j²) per TSN; with ``tsn_stats = batch`` the TSN output is t_j itself and μ_j (log σ² None)."""
        d = self.config.latent_dim
        outs = [tsn(x) for tsn in self.tsns]
        if self.config.tsn_stats == "batch":
            return [(out, None) for out in outs]
        return [(out[:, :d], out[:, d:]) for out in outs]

    def sample_tsns(self, x: torch.Tensor, noise: torch.Generator | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(t_j for every factor, Σ_j KL_j): reparameterised per-sample Gaussians, or the batch-moment form."""
        ts, kl = [], torch.zeros((), device=x.device)
        for mean, logvar in self.tsn_posteriors(x):
            if logvar is None:
                ts.append(mean)
                kl = kl + batch_moment_kl(mean)
            else:
                eps = torch.randn(mean.shape, generator=noise, device=mean.device, dtype=mean.dtype)
                ts.append(mean + torch.exp(0.5 * logvar) * eps)
                kl = kl + gaussian_kl(mean, logvar)
        return ts, kl

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x, y, cfg = batch.images, batch.factors, self.config
        z = self.ckn(x)
        ts, kl = self.sample_tsns(x, batch.noise)
        logits = self.heads([z + t for t in ts])
        with torch.no_grad():
            teacher_logits = self.upstream.logits(batch.upstream)
        ce = factor_cross_entropy(logits, y)
        aux = sum(F.binary_cross_entropy_with_logits(lg, F.one_hot(y[:, j], lg.shape[1]).to(lg.dtype))
                  for j, lg in enumerate(self.aux_heads(ts)))
        infomax = dv_bound(self.projection(batch.upstream), z, cfg.infomax_estimator)
        kd = sum(F.mse_loss(s, t) for s, t in zip(logits, teacher_logits))
        loss = ce + cfg.task_weight * aux - cfg.lambda_feat * infomax + cfg.beta * kl + cfg.lambda_kd * kd
        check_finite("loss", loss)
        self.update("model", loss)
        return {"loss": loss.detach(), "cross_entropy": ce.detach(), "aux_bce": aux.detach(),
                "infomax": infomax.detach(), "kl": kl.detach(), "kd": kd.detach()}

    def means(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(z, [μ_1 … μ_J]): the deterministic CKN output and TSN means."""
        return self.ckn(images), [mean for mean, _ in self.tsn_posteriors(images)]

    def encode(self, images):
        return torch.cat(self.means(images)[1], dim=1)

    def representations(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every representation KF defines ([gap]): ``tsn_means`` (the scored one, :meth:`encode`), ``ckn`` (z) and
        ``ckn_plus_tsn_<j>`` (z + μ_j, the input of head H_j)."""
        z, means = self.means(images)
        return {"tsn_means": torch.cat(means, dim=1), "ckn": z,
                **{f"ckn_plus_tsn_{j}": z + mean for j, mean in enumerate(means)}}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test accuracy per factor of H_j(z + μ_j) (and its mean), of H'_j(μ_j), and of the frozen teacher."""
        self.eval()
        counts = torch.zeros(3, len(self.tsns), dtype=torch.float64)
        for b in data.batches(data.test, self.needs):
            z, means = self.means(b.images)
            counts += torch.stack([correct_per_factor(self.heads([z + mean for mean in means]), b.factors),
                                   correct_per_factor(self.aux_heads(means), b.factors),
                                   correct_per_factor(self.upstream.logits(b.upstream), b.factors)]).cpu()
        self.train()
        acc = counts / len(data.test)
        return {"test_accuracy": float(acc[0].mean()), "test_accuracy_per_factor": acc[0].tolist(),
                "aux_accuracy_per_factor": acc[1].tolist(), "teacher_accuracy_per_factor": acc[2].tolist()}
