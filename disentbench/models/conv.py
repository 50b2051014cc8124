"""Convolutional encoder and decoder of seed 004 (Table 2), for 64×64 images.

Encoder ``E(x)``: six Conv 4×4 / stride 2 / padding 1 layers with 32, 32, 64, 128, 256, 256 channels
(64 → 1 pixels), flatten, Dense → ``out_dim``. A Gaussian encoder outputs ``2d`` numbers read as
``(mean, log-variance)``; its code (the representation) is the mean.

Decoder (mirrored, Table 2): Conv 1×1 → 256, ConvT 4×4/2 → 256, 128, 128, 64, 64, ConvT 3×3/1 → channels.
Table 2 gives kernels and strides but no paddings; we use padding 0 for the first transposed
convolution (1 → 4 pixels) and padding 1 for the others (4 → 8 → 16 → 32 → 64 → 64) so the output is
64×64. The Conv 1×1 is applied with stride 1 (Table 2 lists stride 2, which is a no-op on a 1×1 map).
The decoder returns logits; ``torch.sigmoid`` maps them to pixel intensities in [0, 1].
"""

from __future__ import annotations

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
