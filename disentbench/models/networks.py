"""Whole models of seed 004: multi-task networks (sec. 3.2.1) and auto-encoders (sec. 3.2.2).

Every model has an ``encoder`` (:class:`ConvEncoder`) and ``encode(x)``, the deterministic
representation scored by the suite (the mean for Gaussian encoders).
"""

from __future__ import annotations

import torch
from torch import nn

from disentbench.models.conv import ConvDecoder, ConvEncoder
from disentbench.models.heads import TaskHeads


class EncoderOnly(nn.Module):
    """An encoder alone: the ``random`` baseline (PyTorch default initialisation, never trained; app. C.2)."""

    def __init__(self, encoder: ConvEncoder):
        super().__init__()
        self.encoder = encoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.code(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)


class MultiTaskNet(nn.Module):
    """Shared encoder + task heads: ``y_hat = heads(E(x))`` with shape (B, n_tasks)."""

    def __init__(self, encoder: ConvEncoder, heads: TaskHeads):
        super().__init__()
        self.encoder = encoder
        self.heads = heads

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.code(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.encode(x))


class AutoEncoder(nn.Module):
    """Encoder + mirrored decoder. ``forward`` returns ``(logits, mean, logvar)``; ``logvar`` is None unless Gaussian.

    For a Gaussian encoder the decoder sees ``z = mean + exp(logvar / 2) * eps`` (reparameterisation,
    Kingma & Welling 2014, eq. 10) with ``eps`` drawn from ``generator``; otherwise ``z = E(x)``.
    """

    def __init__(self, encoder: ConvEncoder, decoder: ConvDecoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.code(x)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) of q(z|x); (code, None) for a deterministic encoder."""
        out = self.encoder(x)
        if not self.encoder.gaussian:
            return out, None
        d = self.encoder.latent_dim
        return out[:, :d], out[:, d:]

    @staticmethod
    def reparameterize(mean: torch.Tensor, logvar: torch.Tensor | None, generator: torch.Generator | None = None):
        """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) from ``generator``; the mean itself if logvar is None."""
        if logvar is None:
            return mean
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mean, logvar = self.posterior(x)
        return self.decoder(self.reparameterize(mean, logvar, generator)), mean, logvar


class Discriminator(nn.Module):
    """FactorVAE total-correlation discriminator (Kim & Mnih 2018, app. A): 6 Dense layers, 1000 units,
    LeakyReLU(0.2), 2 logits (column 0: "from q(z)", column 1: "from the product of marginals")."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        mods: list[nn.Module] = []
        prev = latent_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(prev, hidden), nn.LeakyReLU(0.2)]
            prev = hidden
        mods.append(nn.Linear(prev, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class FactorVAE(AutoEncoder):
    """VAE + total-correlation discriminator (Kim & Mnih 2018, eq. 2)."""

    def __init__(self, encoder: ConvEncoder, decoder: ConvDecoder, discriminator: Discriminator):
        super().__init__(encoder, decoder)
        self.discriminator = discriminator
