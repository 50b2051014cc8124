"""The auto-encoder family: AE, VAE, β-VAE, FactorVAE (seed 004, sec. 3.2.2) and the disentanglement_lib models
β-TCVAE, DIP-VAE-I/II and AnnealedVAE, on the seed-004 conv encoder and decoder (Table 2).

Every model minimises ``recon + Σ regulariser terms`` (added in order), with recon the Bernoulli negative
log-likelihood of the pixels (BCE on the decoder logits, summed over pixels, mean over the batch) and z drawn from
q(z|x) by the reparameterisation z = μ + exp(½ log σ²)·ε, ε ~ N(0, I) (Kingma & Welling 2014, eq. 10) from the run's
noise generator. Each subclass overrides :meth:`VAEBase.regulariser`, as disentanglement_lib's ``BaseVAE`` does.
The scored representation is the posterior mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from disentbench.models.base import Batch, Model, adam, check_finite
from disentbench.models.blocks import ConvDecoder, ConvEncoder, Discriminator, initialise
from disentbench.models.config import choice
from disentbench.models.multitask import ACTIVATIONS, SEED_004, EncoderConfig
from disentbench.models.registry import register_model

NEEDS = ("images",)
DLIB = "disentanglement_lib unsupervised_study_v1 (Locatello et al. 2019)"


# -- losses and regularisers -------------------------------------------------------------------------------------
def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) for Bernoulli pixels: BCE-with-logits summed over pixels, mean over the batch."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), mean over the batch."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1).mean()


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; μ, σ²) per coordinate = −½ (log 2π + log σ² + (x − μ)² / σ²)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean).pow(2) * torch.exp(-logvar))


def total_correlation(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Minibatch estimate of TC = KL(q(z) || ∏_j q(z_j)) (Chen et al. 2018, sec. 4.1, minibatch-weighted sampling).

    With the batch standing for the data, q(z_i) ≈ (1/B) Σ_b q(z_i | x_b) and q(z_ij) ≈ (1/B) Σ_b q(z_ij | x_b):
    TC ≈ mean_i [log q(z_i) − Σ_j log q(z_ij)]. It is 0 when every posterior in the batch is the same (independent
    codes) and tends to (d − 1) log B for codes that are deterministic, distinct and equal in all d dimensions.
    disentanglement_lib's value omits the 1/B normalisers (a constant (1 − d) log B; the gradient is the same).
    """
    b = z.shape[0]
    log_q = gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])  # (i, b, j)
    log_qz = torch.logsumexp(log_q.sum(dim=2), dim=1) - math.log(b)
    log_prod = (torch.logsumexp(log_q, dim=1) - math.log(b)).sum(dim=1)
    return (log_qz - log_prod).mean()


def dip_penalty(mean: torch.Tensor, logvar: torch.Tensor, lambda_od: float, lambda_d: float,
                dip_type: str) -> torch.Tensor:
    """DIP-VAE moment penalty (Kumar et al. 2018, eq. 6 and 8): λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)².

    DIP-VAE-I: C = Cov_batch[μ(x)] (biased, 1/B). DIP-VAE-II: C = E_batch[diag σ²(x)] + Cov_batch[μ(x)], the
    covariance of the aggregate posterior.
    """
    centred = mean - mean.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / mean.shape[0]
    if dip_type == "ii":
        cov = cov + torch.diag(logvar.exp().mean(dim=0))
    diag = torch.diagonal(cov)
    off_diag = cov - torch.diag(diag)
    return lambda_od * off_diag.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


def annealed_capacity(step: int, c_max: float, iteration_threshold: int) -> float:
    """Burgess et al. 2018, sec. 4: capacity C raised linearly from 0 to ``c_max`` over ``iteration_threshold`` steps."""
    return min(c_max, c_max * step / iteration_threshold)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Kim & Mnih 2018, Algorithm 1: permute each code dimension independently across the batch, giving samples
    of the product of the marginals ∏_j q(z_j)."""
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return z.gather(0, keys.argsort(dim=0))


# -- configs ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoEncoderConfig(EncoderConfig):
    """Encoder (``latent_dim``, ``activation``, ``init``), decoder non-linearity, Adam ``lr`` and ``betas``."""

    decoder_activation: str
    lr: float
    betas: tuple[float, ...]

    def __post_init__(self):
        super().__post_init__()
        choice(self.decoder_activation, ACTIVATIONS, "decoder_activation")


@dataclass(frozen=True)
class VAEConfig(AutoEncoderConfig):
    """``gaussian``: q(z|x) Gaussian (else a deterministic AE); ``beta``: KL weight (Higgins et al. 2017, eq. 4)."""

    gaussian: bool
    beta: float


@dataclass(frozen=True)
class FactorVAEConfig(VAEConfig):
    """``gamma``: TC weight (Kim & Mnih 2018, eq. 2); the discriminator's size and its Adam settings."""

    gamma: float
    discriminator_hidden: int
    discriminator_layers: int
    discriminator_lr: float
    discriminator_betas: tuple[float, ...]


@dataclass(frozen=True)
class BetaTCVAEConfig(AutoEncoderConfig):
    """``beta``: the TC weight β of Chen et al. 2018, eq. 4 (α = γ = 1)."""

    beta: float


@dataclass(frozen=True)
class DIPVAEConfig(AutoEncoderConfig):
    """``lambda_od``, ``lambda_d``: weights of the off-diagonal and diagonal penalties (Kumar et al. 2018)."""

    lambda_od: float
    lambda_d: float


@dataclass(frozen=True)
class AnnealedVAEConfig(AutoEncoderConfig):
    """``gamma``, ``c_max`` (nats), ``iteration_threshold`` (steps to reach c_max) of Burgess et al. 2018."""

    gamma: float
    c_max: float
    iteration_threshold: int

    def __post_init__(self):
        super().__post_init__()
        if self.iteration_threshold < 1:
            raise ValueError(f"key 'iteration_threshold' must be >= 1, got {self.iteration_threshold}")


# -- models -------------------------------------------------------------------------------------------------------
class VAEBase(Model):
    """Conv encoder + mirrored decoder; ``regulariser`` gives the terms added to the reconstruction loss."""

    representation = "posterior mean"

    def __init__(self, config: AutoEncoderConfig, context, gaussian: bool = True):
        super().__init__(config, context)
        self.encoder = ConvEncoder(context.channels, config.latent_dim, config.activation, gaussian)
        self.decoder = ConvDecoder(context.channels, config.latent_dim, config.decoder_activation)
        initialise(self, config.init)

    @property
    def code_dim(self) -> int:
        return self.config.latent_dim

    def configure_optimizers(self):
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        return {"model": adam(params, self.config.lr, self.config.betas)}

    def encode(self, images):
        return self.encoder.code(images)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Pixel intensities in [0, 1] of the decoder at ``codes``."""
        return torch.sigmoid(self.decoder(codes))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) of q(z|x); (code, None) for a deterministic encoder."""
        out = self.encoder(x)
        if not self.encoder.gaussian:
            return out, None
        d = self.encoder.latent_dim
        return out[:, :d], out[:, d:]

    def regulariser(self, z, mean, logvar, kl, batch: Batch) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """(weighted terms added to the reconstruction loss in order, extra values to log)."""
        raise NotImplementedError

    def vae_step(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One update of encoder and decoder; returns the sampled z and the logged losses."""
        x = batch.images
        mean, logvar = self.posterior(x)
        if logvar is None:
            z, kl = mean, torch.zeros((), device=x.device)
        else:
            z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=batch.noise, device=mean.device,
                                                             dtype=mean.dtype)
            kl = gaussian_kl(mean, logvar)
        recon = bernoulli_nll(self.decoder(z), x)
        terms, logged = self.regulariser(z, mean, logvar, kl, batch)
        loss = recon
        for term in terms:
            loss = loss + term
        check_finite("loss", loss)
        self.update("model", loss)
        return z, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(),
                   **{k: v.detach() for k, v in logged.items()}}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.vae_step(batch)[1]

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test reconstruction from the posterior mean: Bernoulli NLL and MSE per pixel, KL."""
        self.eval()
        nll = kl = se = 0.0
        for batch in data.batches(data.test, self.needs):
            x = batch.images
            mean, logvar = self.posterior(x)
            logits = self.decoder(mean)
            nll += float(F.binary_cross_entropy_with_logits(logits, x, reduction="sum"))
            se += float((torch.sigmoid(logits) - x).pow(2).sum())
            if logvar is not None:
                kl += float(gaussian_kl(mean, logvar)) * len(x)
        self.train()
        n = len(data.test)
        pixels = data.images[0].numel()
        return {"test_recon": nll / n, "test_kl": kl / n, "test_mse": se / (n * pixels)}


@register_model("beta-vae", family="auto-encoder", needs=NEEDS, config=VAEConfig,
                source=f"Higgins et al. 2017, eq. 4; {SEED_004}, sec. 3.2.2; app. C.3")
@register_model("vae", family="auto-encoder", needs=NEEDS, config=VAEConfig,
                source=f"{SEED_004}, sec. 3.2.2; Kingma & Welling 2014 (ELBO, eq. 10); app. C.3")
@register_model("ae", family="auto-encoder", needs=NEEDS, config=VAEConfig,
                source=f"{SEED_004}, sec. 3.2.2 and 4.3; Table 2; app. C.3 (gaussian = false, beta = 0)")
class AutoEncoder(VAEBase):
    """AE / VAE / β-VAE: loss = −log p(x|z) + β·KL(q(z|x) || N(0, I)) (Higgins et al. 2017, eq. 4)."""

    def __init__(self, config: VAEConfig, context):
        super().__init__(config, context, gaussian=config.gaussian)
        if not config.gaussian:
            self.representation = "encoder output"

    def regulariser(self, z, mean, logvar, kl, batch):
        return [self.config.beta * kl], {}


@register_model("factor-vae", family="auto-encoder", needs=NEEDS, config=FactorVAEConfig,
                source=f"Kim & Mnih 2018 (eq. 2, Algorithm 2, app. discriminator); {SEED_004}, sec. 3.2.2 and 4.3")
class FactorVAE(VAEBase):
    """VAE + γ·TC, TC ≈ mean_b [D(z)_0 − D(z)_1] by a discriminator (the density-ratio trick; Kim & Mnih 2018, eq. 2).

    Discriminator step (Algorithm 2), after the VAE update on the same minibatch: cross-entropy of D on z (class 0)
    versus ``permute_dims`` of an independent half of the batch (class 1), both detached.
    """

    def __init__(self, config: FactorVAEConfig, context):
        if not config.gaussian:
            raise ValueError("factor-vae needs a Gaussian encoder (gaussian = true)")
        super().__init__(config, context)
        self.discriminator = Discriminator(config.latent_dim, config.discriminator_hidden, config.discriminator_layers)
        initialise(self.discriminator, config.init)

    def configure_optimizers(self):
        return {**super().configure_optimizers(),
                "discriminator": adam(self.discriminator.parameters(), self.config.discriminator_lr,
                                      self.config.discriminator_betas)}

    def regulariser(self, z, mean, logvar, kl, batch):
        logits = self.discriminator(z)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        return [self.config.beta * kl, self.config.gamma * tc], {"tc": tc}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z, losses = self.vae_step(batch)
        half = z.shape[0] // 2
        z = z.detach()
        real = self.discriminator(z[:half])
        fake = self.discriminator(permute_dims(z[half:2 * half], batch.noise))
        zeros = torch.zeros(half, dtype=torch.long, device=z.device)
        d_loss = 0.5 * (F.cross_entropy(real, zeros) + F.cross_entropy(fake, zeros + 1))
        check_finite("discriminator loss", d_loss)
        self.update("discriminator", d_loss)
        return {**losses, "d_loss": d_loss.detach()}


@register_model("beta-tcvae", family="auto-encoder", needs=NEEDS, config=BetaTCVAEConfig,
                source=f"Chen et al. 2018 (Isolating sources of disentanglement in VAEs), eq. 4 and sec. 4.1; {DLIB}")
class BetaTCVAE(VAEBase):
    """β-TCVAE: loss = −log p(x|z) + KL + (β − 1)·TC, the TC by :func:`total_correlation` (Chen et al. 2018, eq. 4
    with α = γ = 1, as disentanglement_lib's ``BetaTCVAE``)."""

    def regulariser(self, z, mean, logvar, kl, batch):
        tc = total_correlation(z, mean, logvar)
        return [kl, (self.config.beta - 1.0) * tc], {"tc": tc}


class DIPVAE(VAEBase):
    """DIP-VAE: loss = −log p(x|z) + KL + :func:`dip_penalty` (Kumar et al. 2018, eq. 6 / 8)."""

    dip_type = ""

    def regulariser(self, z, mean, logvar, kl, batch):
        penalty = dip_penalty(mean, logvar, self.config.lambda_od, self.config.lambda_d, self.dip_type)
        return [kl, penalty], {"dip": penalty}


@register_model("dip-vae-i", family="auto-encoder", needs=NEEDS, config=DIPVAEConfig,
                source=f"Kumar et al. 2018 (Variational inference of disentangled latent concepts), eq. 6; {DLIB}")
class DIPVAEI(DIPVAE):
    """DIP-VAE-I: the penalty on the covariance of the posterior means."""

    dip_type = "i"


@register_model("dip-vae-ii", family="auto-encoder", needs=NEEDS, config=DIPVAEConfig,
                source=f"Kumar et al. 2018 (Variational inference of disentangled latent concepts), eq. 8; {DLIB}")
class DIPVAEII(DIPVAE):
    """DIP-VAE-II: the penalty on the covariance of the aggregate posterior."""

    dip_type = "ii"


@register_model("annealed-vae", family="auto-encoder", needs=NEEDS, config=AnnealedVAEConfig,
                source=f"Burgess et al. 2018 (Understanding disentangling in β-VAE), eq. 8; {DLIB}")
class AnnealedVAE(VAEBase):
    """AnnealedVAE: loss = −log p(x|z) + γ·|KL − C|, C = :func:`annealed_capacity` of the step (Burgess et al. 2018)."""

    def regulariser(self, z, mean, logvar, kl, batch):
        capacity = annealed_capacity(batch.step, self.config.c_max, self.config.iteration_threshold)
        return [self.config.gamma * (kl - capacity).abs()], {"capacity": torch.tensor(capacity)}
