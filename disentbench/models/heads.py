"""Task heads of seed 004 (Table 3): Dense 300, 300, 300, then the output; non-linearity after all but the last."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from disentbench.models.conv import activation


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
