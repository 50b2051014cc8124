"""Shared building blocks: the conv encoder and decoder of seed 004 (Table 2), the MLP task heads (Table 3), the
FactorVAE discriminator, gradient reversal and initialisation.

Encoder ``E(x)``: six Conv 4×4 / stride 2 / padding 1 layers with 32, 32, 64, 128, 256, 256 channels
(64 → 1 pixels), flatten, Dense → ``out_dim``. A Gaussian encoder outputs ``2d`` numbers read as
``(mean, log-variance)``; its code (the representation) is the mean.

Decoder (mirrored, Table 2): Conv 1×1 → 256, ConvT 4×4/2 → 256, 128, 128, 64, 64, ConvT 3×3/1 → channels.
Table 2 gives kernels and strides but no paddings; we use padding 0 for the first transposed
convolution (1 → 4 pixels) and padding 1 for the others (4 → 8 → 16 → 32 → 64 → 64) so the output is
64×64. The Conv 1×1 is applied with stride 1 (Table 2 lists stride 2, which is a no-op on a 1×1 map).
The decoder returns logits; ``torch.sigmoid`` maps them to pixel intensities in [0, 1].

Heads (Table 3): Dense 300, 300, 300, then the output; the non-linearity after all but the last layer.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ENCODER_CHANNELS = (32, 32, 64, 128, 256, 256)
DECODER_CHANNELS = (256, 256, 128, 128, 64, 64)


def activation(name: str) -> nn.Module:
    """The non-linearity named in a config: ``relu`` (Table 2/3) or ``tanh`` (app. C.3)."""
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}; choose 'relu' or 'tanh'")


class ConvEncoder(nn.Module):
    """E(x): images (B, C, 64, 64) in [0, 1] → (B, d), or (B, 2d) = (mean, log-variance) if ``gaussian``."""

    def __init__(self, channels: int, latent_dim: int, activation_name: str = "relu", gaussian: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = channels
        for out_ch in ENCODER_CHANNELS:
            layers += [nn.Conv2d(in_ch, out_ch, 4, 2, 1), activation(activation_name)]
            in_ch = out_ch
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.gaussian = bool(gaussian)
        self.latent_dim = int(latent_dim)
        self.dense = nn.Linear(ENCODER_CHANNELS[-1], 2 * latent_dim if gaussian else latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.features(x))

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic representation: the output, or its mean half for a Gaussian encoder."""
        out = self.forward(x)
        return out[:, : self.latent_dim]


class ConvDecoder(nn.Module):
    """Mirrored decoder: codes (B, d) → pixel logits (B, C, 64, 64)."""

    def __init__(self, channels: int, latent_dim: int, activation_name: str = "relu"):
        super().__init__()
        c = DECODER_CHANNELS
        layers: list[nn.Module] = [nn.Conv2d(latent_dim, c[0], 1, 1), activation(activation_name)]
        for i in range(1, len(c)):
            layers += [nn.ConvTranspose2d(c[i - 1], c[i], 4, 2, 0 if i == 1 else 1), activation(activation_name)]
        layers.append(nn.ConvTranspose2d(c[-1], channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class MLPHead(nn.Module):
    """MLP ``in_dim → hidden... → out_dim`` with the activation after every hidden layer."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (300, 300, 300), activation_name: str = "relu"):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_dim
        for width in hidden:
            layers += [nn.Linear(prev, int(width)), activation(activation_name)]
            prev = int(width)
        layers.append(nn.Linear(prev, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class TaskHeads(nn.Module):
    """Predictions (B, n_tasks) from codes (B, d).

    ``multi``: one single-output head per task (hard parameter sharing, sec. 3.2.1);
    ``one``: one head with ``n_tasks`` outputs (multivariate regression, sec. 4.1 / Fig. 4).
    A single-task model is ``multi`` with ``n_tasks = 1``.
    """

    def __init__(self, latent_dim: int, n_tasks: int, mode: str = "multi", hidden: Sequence[int] = (300, 300, 300),
                 activation_name: str = "relu"):
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"need at least one task, got n_tasks={n_tasks}")
        if mode == "multi":
            self.heads = nn.ModuleList(MLPHead(latent_dim, 1, hidden, activation_name) for _ in range(n_tasks))
        elif mode == "one":
            self.heads = nn.ModuleList([MLPHead(latent_dim, n_tasks, hidden, activation_name)])
        else:
            raise ValueError(f"unknown head mode {mode!r}; choose 'multi' or 'one'")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(z) for head in self.heads], dim=1)


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


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Gradient reversal (Ganin & Lempitsky 2015, eq. 11): identity forward, gradient multiplied by −``scale``."""
    return _ReverseGradient.apply(x, float(scale))


def initialise(model: nn.Module, init: str) -> None:
    """``default``: leave PyTorch's default initialisation (the random baseline, seed 004 app. C.2); ``kaiming``:
    He et al. 2015 normal init (fan-in, ReLU gain √2) of every conv / transposed conv / dense weight, zero biases."""
    if init == "default":
        return
    if init != "kaiming":
        raise ValueError(f"unknown init {init!r}; choose 'default' or 'kaiming'")
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
