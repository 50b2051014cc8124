"""Downstream protocols of seed 004 on the frozen encoder of another run (``--from RUN_DIR``): task heads (Table 1)
and a decoder (Table 4). They are not leaderboard entries; their representation is the upstream's, unchanged.

The upstream model is a frozen sub-module (its weights travel in this run's checkpoint, so the run is
self-contained); the loop encodes the run's images with it once and feeds the codes as ``batch.upstream``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from disentbench.models.base import Batch, Model, adam, check_finite
from disentbench.models.blocks import ConvDecoder, TaskHeads, initialise
from disentbench.models.config import choice
from disentbench.models.multitask import ACTIVATIONS, INITS, SEED_004, HeadsConfig, TaskRegression
from disentbench.models.registry import register_model


class FrozenUpstream(Model):
    """Holds the frozen upstream model; :meth:`encode` is the upstream's representation."""

    def __init__(self, config, context):
        super().__init__(config, context)
        self.upstream = context.upstream.requires_grad_(False)
        self.representation = self.upstream.representation

    @property
    def code_dim(self) -> int:
        return self.upstream.code_dim

    def encode(self, images):
        return self.upstream.encode(images)


@dataclass(frozen=True)
class FrozenHeadsConfig(HeadsConfig):
    init: str

    def __post_init__(self):
        super().__post_init__()
        choice(self.init, INITS, "init")


@register_model("heads-on-frozen", family="protocol", needs=("upstream", "targets"), config=FrozenHeadsConfig,
                leaderboard=False, source=f"{SEED_004}, sec. 4.3 and Table 1; app. C.3 (tanh heads, 30 epochs, "
                                          "batch 64, lr 1e-4, Adam)")
class HeadsOnFrozen(TaskRegression, FrozenUpstream):
    """Table 1: multi-task heads trained on the codes of a frozen encoder; reports the Table-1 test RMSE."""

    def __init__(self, config: FrozenHeadsConfig, context):
        super().__init__(config, context)
        self.heads = TaskHeads(self.code_dim, context.n_tasks, config.head_mode, config.head_hidden,
                               config.head_activation)
        initialise(self.heads, config.init)

    def configure_optimizers(self):
        return {"model": adam(self.heads.parameters(), self.config.lr, self.config.betas)}

    def predict(self, batch: Batch) -> torch.Tensor:
        return self.heads(batch.upstream)


@dataclass(frozen=True)
class FrozenDecoderConfig:
    """Decoder non-linearity, Adam settings, and the step schedule lr·gamma^(epoch // lr_step_epochs) (0 = none)."""

    init: str
    decoder_activation: str
    lr: float
    betas: tuple[float, ...]
    lr_step_epochs: int
    lr_gamma: float

    def __post_init__(self):
        choice(self.init, INITS, "init")
        choice(self.decoder_activation, ACTIVATIONS, "decoder_activation")


@register_model("decoder-on-frozen", family="protocol", needs=("upstream", "images"), config=FrozenDecoderConfig,
                leaderboard=False, source=f"{SEED_004}, sec. 4.2 and Table 4; app. C.2 (MSE, 500 epochs, batch 64, "
                                          "lr 2e-4 halved every 100 epochs)")
class DecoderOnFrozen(FrozenUpstream):
    """Table 4: a decoder trained on the codes of a frozen encoder, loss = MSE(sigmoid(logits), x) (app. C.2)."""

    def __init__(self, config: FrozenDecoderConfig, context):
        super().__init__(config, context)
        self.decoder = ConvDecoder(context.channels, self.code_dim, config.decoder_activation)
        initialise(self.decoder, config.init)

    def configure_optimizers(self):
        return {"model": adam(self.decoder.parameters(), self.config.lr, self.config.betas)}

    def on_epoch(self, epoch: int) -> None:
        if self.config.lr_step_epochs:
            lr = self.config.lr * self.config.lr_gamma ** (epoch // self.config.lr_step_epochs)
            for group in self.optimizers["model"].param_groups:
                group["lr"] = lr

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Pixel intensities in [0, 1] of the decoder at ``codes``."""
        return torch.sigmoid(self.decoder(codes))

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self.decode(batch.upstream), batch.images)
        check_finite("loss", loss)
        self.update("model", loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test reconstruction error: per-pixel MSE and per-image sum of squared errors."""
        self.eval()
        se = sum(float((self.decode(b.upstream) - b.images).pow(2).sum())
                 for b in data.batches(data.test, self.needs))
        self.train()
        n, pixels = len(data.test), data.images[0].numel()
        return {"test_mse": se / (n * pixels), "test_sse_per_image": se / n}
