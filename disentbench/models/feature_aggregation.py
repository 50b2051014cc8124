"""Feature-aggregation β-VAE (seed 003: Seitzer, Foltyn & Kemeth, NeurIPS 2019 disentanglement challenge, stage 2,
2nd place): a β-VAE on CNN features that were fine-tuned on factor labels.

Three stages (sec. 2.1–2.3), two registry names:

1. ``fa-backbone`` (sec. 2.1; a stage, not a leaderboard entry): backbone feature map → aggregation module → 512-d feature, L2-normalised; one linear
   head per factor, loss Σ_j CE_j; RAdam (decoupled weight decay), backbone trained too. The challenge's backbone is
   ImageNet VGG19-BN (512×2×2 maps), which cannot be downloaded here: the backbone is the seed-004 conv layers 1–5
   (256×2×2), trained from scratch. Aggregator (authors' ``AggregatedFeatureExtractor``): per block Dropout2d(0.1) →
   Conv (no bias; kernels 1, 2, 1; 1024, 2048, 512 maps) → BatchNorm → ReLU, then ‖·‖₂ = 1 (so features are ≥ 0).
2. Features of every image (sec. 2.2), in eval mode: the ``fa-backbone`` run is the ``--from`` upstream of stage 3,
   whose encoder output the loop computes once per run.
3. ``fa-beta-vae`` (sec. 2.3): encoder Linear 4096 (no bias) → BN → ReLU → (μ, log σ²) ∈ R^C, C = 18; decoder
   4 × [Linear 4096 (no bias) → BN → ReLU] → Linear 512 → sigmoid; orthogonal init; loss (sec. 2.3)

       (1/B) Σ_i Σ_{k≤512} (x̂_ik − x_ik)² + β/(B·C) Σ_i Σ_j KL(q(z_j|x_i) ‖ N(0, 1)),

   β(t) the cosine schedule of :func:`cosine_beta` over the zero-based epoch t; RAdam 1e-3. Scored: the encoder mean.

The representation saw factor labels in stage 1: the ``fa-beta-vae`` entry is registered as ``supervised-pretrained``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.models.base import Batch, Model, check_finite
from disentbench.models.blocks import ENCODER_CHANNELS
from disentbench.models.config import choice
from disentbench.models.factor_classifier import FactorHeads, correct_per_factor, factor_cross_entropy
from disentbench.models.registry import register_model
from disentbench.models.vae import gaussian_kl

SEED_003 = ("Seed 003 (Seitzer, Foltyn & Kemeth 2019, Improved disentanglement through learned aggregation of "
            "convolutional feature maps; NeurIPS 2019 disentanglement challenge, stage 2, 2nd place)")
#: the seed-004 encoder's conv layers 1-5 (64 -> 2 pixels), standing in for VGG19-BN's feature maps
BACKBONE_CHANNELS = ENCODER_CHANNELS[:5]
BACKBONE_INITS = ("default", "kaiming_uniform")
VAE_INITS = ("orthogonal", "default")
#: a latent dimension whose mean KL over the test split exceeds this (nats) counts as active ([gap])
ACTIVE_KL = 0.01


def radam(params, lr: float, betas, weight_decay: float) -> torch.optim.RAdam:
    """RAdam (Liu et al. 2020) with decoupled weight decay, as the authors' ``radam.py`` (p ← p − lr·wd·p)."""
    return torch.optim.RAdam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                             decoupled_weight_decay=True)


def cosine_beta(epoch: float, beta_start: float, beta_end: float, start_epoch: int, end_epoch: int) -> float:
    """Sec. 2.3: β(t) = β_start for t < t_start; β_end − ½(β_end − β_start)(1 + cos π (t − t_start)/(t_end − t_start))
    for t_start ≤ t ≤ t_end; β_end after (t the zero-based epoch)."""
    if epoch < start_epoch:
        return beta_start
    if epoch > end_epoch or end_epoch == start_epoch:
        return beta_end
    return beta_end - 0.5 * (beta_end - beta_start) * (1 + math.cos(math.pi * (epoch - start_epoch)
                                                                    / (end_epoch - start_epoch)))


# -- stage 1: the fine-tuned extractor -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackboneConfig:
    """Aggregator (``aggregator_channels``, ``aggregator_kernels``, ``aggregator_dropout``), ``init`` of the aggregator
    and heads (default|kaiming_uniform), RAdam (``lr``, ``betas``, decoupled ``weight_decay``)."""

    aggregator_channels: tuple[int, ...]
    aggregator_kernels: tuple[int, ...]
    aggregator_dropout: float
    init: str
    lr: float
    betas: tuple[float, ...]
    weight_decay: float

    def __post_init__(self):
        choice(self.init, BACKBONE_INITS, "init")
        size = 64 // 2 ** len(BACKBONE_CHANNELS)
        for k in self.aggregator_kernels:
            size -= k - 1
        if len(self.aggregator_channels) != len(self.aggregator_kernels) or not self.aggregator_channels or size != 1:
            raise ValueError("keys 'aggregator_channels' and 'aggregator_kernels' must have one entry per block and "
                             f"reduce the 2x2 backbone map to 1x1, got {list(self.aggregator_channels)}, "
                             f"{list(self.aggregator_kernels)}")


@register_model("fa-backbone", family="feature-aggregation", needs=("images", "factors"), config=BackboneConfig,
                leaderboard=False,
                source=f"{SEED_003}: sec. 2.1; authors' code (mseitzer/neurips2019-disentanglement-challenge) "
                       "pytorch/feature_extractors.py, configs/stage2_finetuning.gin; backbone: seed-004 Table 2 "
                       "conv layers 1-5 trained from scratch (VGG19-BN cannot be downloaded)")
class FeatureExtractor(Model):
    """Conv layers 1–5 + aggregation module → L2-normalised 512-d feature, one linear head per factor (Σ_j CE_j)."""

    representation = "L2-normalised aggregated feature (input of the linear factor heads, eval mode)"

    def __init__(self, config: BackboneConfig, context):
        super().__init__(config, context)
        if not context.factor_sizes:
            raise ValueError("fa-backbone needs the factor sizes (context.factor_sizes)")
        layers: list[nn.Module] = []
        prev = context.channels
        for width in BACKBONE_CHANNELS:
            layers += [nn.Conv2d(prev, width, 4, 2, 1), nn.ReLU()]
            prev = width
        self.backbone = nn.Sequential(*layers)
        blocks: list[nn.Module] = []
        for width, kernel in zip(config.aggregator_channels, config.aggregator_kernels):
            blocks += [nn.Dropout2d(config.aggregator_dropout), nn.Conv2d(prev, width, kernel, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU()]
            prev = width
        self.aggregator = nn.Sequential(*blocks, nn.Flatten())
        self.heads = FactorHeads(prev, context.factor_sizes)
        if config.init == "kaiming_uniform":  # sec. 2.1: uniform He initialisation of aggregator and heads
            for m in [*self.aggregator.modules(), *self.heads.modules()]:
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    @property
    def code_dim(self) -> int:
        return self.config.aggregator_channels[-1]

    def configure_optimizers(self):
        c = self.config
        return {"model": radam(self.parameters(), c.lr, c.betas, c.weight_decay)}

    def encode(self, images):
        """f(x) = aggregate(backbone(x)) / ‖·‖₂ (unit norm, ≥ 0)."""
        return F.normalize(self.aggregator(self.backbone(images)), dim=1)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        ce = factor_cross_entropy(self.heads(self.encode(batch.images)), batch.factors)
        check_finite("loss", ce)
        self.update("model", ce)
        return {"loss": ce.detach()}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test accuracy per factor of the linear heads on the eval-mode features, and their mean."""
        self.eval()
        counts = sum(correct_per_factor(self.heads(self.encode(b.images)), b.factors).cpu()
                     for b in data.batches(data.test, self.needs))
        self.train()
        accuracy = counts / len(data.test)
        return {"test_accuracy": float(accuracy.mean()), "test_accuracy_per_factor": accuracy.tolist()}


# -- stage 3: the β-VAE on features --------------------------------------------------------------------------------
def dense_stack(in_dim: int, widths, out_dim: int) -> nn.Sequential:
    """Per width Linear (no bias) → BatchNorm → ReLU, then Linear → ``out_dim`` (sec. 2.3)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


@dataclass(frozen=True)
class FeatureVAEConfig:
    """``latent_dim`` C, ``encoder_hidden`` / ``decoder_hidden`` widths, ``init`` orthogonal|default, the cosine β
    schedule (β_start → β_end over zero-based epochs ``beta_start_epoch`` … ``beta_end_epoch``), RAdam."""

    latent_dim: int
    encoder_hidden: tuple[int, ...]
    decoder_hidden: tuple[int, ...]
    init: str
    beta_start: float
    beta_end: float
    beta_start_epoch: int
    beta_end_epoch: int
    lr: float
    betas: tuple[float, ...]

    def __post_init__(self):
        choice(self.init, VAE_INITS, "init")
        if self.latent_dim < 1 or not 0 <= self.beta_start_epoch <= self.beta_end_epoch:
            raise ValueError(f"keys 'latent_dim' >= 1 and 0 <= 'beta_start_epoch' <= 'beta_end_epoch' required, got "
                             f"{self.latent_dim}, {self.beta_start_epoch}, {self.beta_end_epoch}")


@register_model("fa-beta-vae", family="feature-aggregation", needs=("upstream",), config=FeatureVAEConfig,
                upstream=("fa-backbone",), supervision="supervised-pretrained",
                source=f"{SEED_003}: sec. 2.2-2.3 (loss, cosine beta schedule); authors' code "
                       "pytorch/train_feature_vae.py, configs/stage2_vae.gin")
class FeatureVAE(Model):
    """β-VAE with a cosine β schedule on the frozen features of an ``fa-backbone`` run; scored by the encoder mean."""

    representation = "posterior mean of the beta-VAE on the frozen fa-backbone feature"

    def __init__(self, config: FeatureVAEConfig, context):
        super().__init__(config, context)
        self.upstream = context.upstream.requires_grad_(False).eval()
        dim, c = self.upstream.code_dim, config.latent_dim
        self.encoder = dense_stack(dim, config.encoder_hidden, 2 * c)
        self.decoder = dense_stack(c, config.decoder_hidden, dim)
        if config.init == "orthogonal":  # sec. 2.3: orthogonal initialisation of all layers
            for m in [*self.encoder.modules(), *self.decoder.modules()]:
                if isinstance(m, nn.Linear):
                    nn.init.orthogonal_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def train(self, mode: bool = True):
        """Train/eval mode for the VAE; the frozen extractor always stays in eval mode (stage 2 features)."""
        super().train(mode)
        self.upstream.eval()
        return self

    @property
    def code_dim(self) -> int:
        return self.config.latent_dim

    def configure_optimizers(self):
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {"model": radam(params, self.config.lr, self.config.betas, 0.0)}

    def beta(self, epoch: int) -> float:
        c = self.config
        return cosine_beta(epoch, c.beta_start, c.beta_end, c.beta_start_epoch, c.beta_end_epoch)

    def posterior(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(features).chunk(2, dim=1)
        return mean, logvar

    def encode(self, images):
        return self.posterior(self.upstream.encode(images))[0]

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One RAdam step on Σ_k (x̂ − x)² + β(epoch)·KL/C, both batch means (sec. 2.3)."""
        x = batch.upstream
        mean, logvar = self.posterior(x)
        eps = torch.randn(mean.shape, generator=batch.noise, device=mean.device, dtype=mean.dtype)
        recon = (torch.sigmoid(self.decoder(mean + torch.exp(0.5 * logvar) * eps)) - x).pow(2).sum(dim=1).mean()
        kl = gaussian_kl(mean, logvar)
        beta = self.beta(batch.epoch)
        loss = recon + beta * kl / self.config.latent_dim
        check_finite("loss", loss)
        self.update("model", loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(),
                "beta": torch.tensor(beta)}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """On the test features: reconstruction Σ_k (x̂ − x)² from the mean, KL, and the number of active latents
        (mean KL_j > ``ACTIVE_KL`` nats)."""
        self.eval()
        recon = torch.zeros((), dtype=torch.float64)
        kl_j = torch.zeros(self.config.latent_dim, dtype=torch.float64)
        for x in data.upstream[data.test].split(4096):
            mean, logvar = self.posterior(x)
            recon += float((torch.sigmoid(self.decoder(mean)) - x).pow(2).sum())
            kl_j += (0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0)).sum(dim=0).double().cpu()
        self.train()
        n = len(data.test)
        return {"test_recon": float(recon) / n, "test_kl": float(kl_j.sum()) / n,
                "active_latents": int((kl_j / n > ACTIVE_KL).sum())}
