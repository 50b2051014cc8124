"""Losses and optimisation steps of each training objective (one class per ``objective`` of a reference config).

Every objective exposes ``optimizers`` (name → optimiser), ``prepare()``, ``set_epoch(epoch)``,
``step(positions) -> {name: 0-d tensor}`` (key ``loss`` always present) and ``evaluate() -> {name: float}``
on the test split. A non-finite loss raises :class:`NonFiniteLoss` *before* any parameter update.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EVAL_BATCH = 256


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; training stops and the last good checkpoint is kept."""


def _adam(params, lr, betas) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=float(lr), betas=tuple(float(b) for b in betas))


def _check(name: str, value: torch.Tensor) -> None:
    if not torch.isfinite(value):
        raise NonFiniteLoss(f"{name} is {value.item()}")


def _chunks(positions: torch.Tensor):
    for start in range(0, len(positions), EVAL_BATCH):
        yield positions[start:start + EVAL_BATCH]


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) for Bernoulli pixels: BCE-with-logits summed over pixels, mean over the batch."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) = ½ Σ_j (mean² + exp(logvar) − logvar − 1), mean over the batch."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1).mean()


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Kim & Mnih 2018, Algorithm 1: permute each code dimension independently across the batch,
    giving samples of the product of the marginals ∏_j q(z_j)."""
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return z.gather(0, keys.argsort(dim=0))


class Objective:
    """Shared plumbing: the model, the data, the noise generator and the optimisers."""

    def __init__(self, spec: dict, model, data, noise: torch.Generator):
        self.spec, self.model, self.data, self.noise = spec, model, data, noise
        self.opt = spec["optimizer"]
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def prepare(self) -> None:
        """Work done once before the first step (e.g. encoding the data with a frozen encoder)."""

    def set_epoch(self, epoch: int) -> None:
        """Per-epoch learning-rate schedule: lr · lr_gamma^(epoch // lr_step_epochs) when configured."""
        step = self.opt.get("lr_step_epochs")
        if not step:
            return
        lr = float(self.opt["lr"]) * float(self.opt.get("lr_gamma", 0.5)) ** (epoch // int(step))
        for group in self.optimizers["model"].param_groups:
            group["lr"] = lr

    def _update(self, name: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class NoTraining(Objective):
    """``random``: nothing is optimised."""

    def step(self, positions):
        raise RuntimeError("the random model is not trained")

    def evaluate(self) -> dict:
        return {}


class TaskRegression(Objective):
    """Multi-task regression, app. C.1: loss = Σ_t mean_b (ŷ_bt − y_bt)² on raw targets.

    With ``standardize_targets`` (smoke budgets only) the network predicts ``(y − μ_t) / σ_t`` (train-split
    mean and std per task) and the loss is Σ_t mean_b (ŷ_bt − (y_bt − μ_t)/σ_t)² — the raw objective with
    task t weighted by 1/σ_t². Test errors are always reported on the raw scale (ŷ σ_t + μ_t vs y).
    """

    def __init__(self, spec, model, data, noise):
        super().__init__(spec, model, data, noise)
        self.optimizers["model"] = _adam(self.trainable(), self.opt["lr"], self.opt["betas"])
        y = data.targets[data.train]
        if spec["loss"].get("standardize_targets", False):
            self.shift, self.scale = y.mean(dim=0), y.std(dim=0).clamp_min(1e-8)
        else:
            self.shift, self.scale = torch.zeros_like(y[0]), torch.ones_like(y[0])

    def trainable(self):
        return self.model.parameters()

    def inputs(self, positions: torch.Tensor) -> torch.Tensor:
        return self.data.batch(positions)

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    def step(self, positions):
        target = (self.data.targets[positions] - self.shift) / self.scale
        per_task = (self.predict(self.inputs(positions)) - target).pow(2).mean(dim=0)
        loss = per_task.sum()
        _check("task loss", loss)
        self._update("model", loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        sq = torch.zeros(self.data.targets.shape[1], dtype=torch.float64, device=self.data.targets.device)
        for pos in _chunks(self.data.test):
            raw = self.predict(self.inputs(pos)) * self.scale + self.shift
            sq += (raw - self.data.targets[pos]).double().pow(2).sum(dim=0)
        self.model.train()
        mse = (sq / len(self.data.test)).cpu()
        return {"test_loss": float(mse.sum()), "test_rmse": math.sqrt(float(mse.mean())),
                "test_mse_per_task": [float(v) for v in mse]}


class FrozenHeads(TaskRegression):
    """Table 1 protocol: heads trained on codes of a frozen encoder (codes computed once, eval mode)."""

    def trainable(self):
        return self.model.heads.parameters()

    def prepare(self) -> None:
        self.codes = encode_all(self.model, self.data)

    def inputs(self, positions):
        return self.codes[positions]

    def predict(self, codes):
        return self.model.heads(codes)


class AutoEncoding(Objective):
    """AE / VAE / β-VAE: loss = −log p(x|z) + β · KL(q(z|x) || N(0, I)) (Higgins et al. 2017, eq. 4; β = 0 for the AE)."""

    def __init__(self, spec, model, data, noise):
        super().__init__(spec, model, data, noise)
        self.beta = float(spec["loss"].get("beta", 1.0))
        vae_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
        self.optimizers["model"] = _adam(vae_params, self.opt["lr"], self.opt["betas"])

    def vae_terms(self, x):
        mean, logvar = self.model.posterior(x)
        z = self.model.reparameterize(mean, logvar, self.noise)
        recon = bernoulli_nll(self.model.decoder(z), x)
        kl = gaussian_kl(mean, logvar) if logvar is not None else torch.zeros((), device=x.device)
        return z, recon, kl

    def step(self, positions):
        _, recon, kl = self.vae_terms(self.data.batch(positions))
        loss = recon + self.beta * kl
        _check("loss", loss)
        self._update("model", loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Test reconstruction from the posterior mean: Bernoulli NLL and MSE (per pixel), KL."""
        self.model.eval()
        nll = kl = se = 0.0
        for pos in _chunks(self.data.test):
            x = self.data.batch(pos)
            mean, logvar = self.model.posterior(x)
            logits = self.model.decoder(mean)
            nll += float(F.binary_cross_entropy_with_logits(logits, x, reduction="sum"))
            se += float((torch.sigmoid(logits) - x).pow(2).sum())
            if logvar is not None:
                kl += float(gaussian_kl(mean, logvar)) * len(pos)
        self.model.train()
        n = len(self.data.test)
        pixels = self.data.images[0].numel()
        return {"test_recon": nll / n, "test_kl": kl / n, "test_mse": se / (n * pixels)}


class FactorVAEObjective(AutoEncoding):
    """FactorVAE (Kim & Mnih 2018, eq. 2 and Algorithm 2).

    VAE step: recon + β·KL + γ·TC with TC ≈ mean_b [D(z)_0 − D(z)_1] (the density-ratio trick).
    Discriminator step: cross-entropy of D on z (class 0) versus permute_dims(z') (class 1). Both come from
    one encoder pass over the minibatch: z from its first half, z' from its second half (detached), so the
    two discriminator classes use independent samples as in Algorithm 2.
    """

    def __init__(self, spec, model, data, noise):
        super().__init__(spec, model, data, noise)
        self.gamma = float(spec["loss"]["gamma"])
        self.optimizers["discriminator"] = _adam(
            model.discriminator.parameters(), self.opt.get("discriminator_lr", self.opt["lr"]),
            self.opt.get("discriminator_betas", (0.5, 0.9)),
        )

    def step(self, positions):
        z, recon, kl = self.vae_terms(self.data.batch(positions))
        logits = self.model.discriminator(z)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        loss = recon + self.beta * kl + self.gamma * tc
        _check("loss", loss)
        self._update("model", loss)
        half = z.shape[0] // 2
        z = z.detach()
        real = self.model.discriminator(z[:half])
        fake = self.model.discriminator(permute_dims(z[half:2 * half], self.noise))
        zeros = torch.zeros(half, dtype=torch.long, device=z.device)
        d_loss = 0.5 * (F.cross_entropy(real, zeros) + F.cross_entropy(fake, zeros + 1))
        _check("discriminator loss", d_loss)
        self._update("discriminator", d_loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(), "tc": tc.detach(),
                "d_loss": d_loss.detach()}


class FrozenDecoder(Objective):
    """Table 4 protocol: decoder trained on codes of a frozen encoder, loss = MSE(sigmoid(logits), x) (app. C.2)."""

    def __init__(self, spec, model, data, noise):
        super().__init__(spec, model, data, noise)
        self.optimizers["model"] = _adam(model.decoder.parameters(), self.opt["lr"], self.opt["betas"])

    def prepare(self) -> None:
        self.codes = encode_all(self.model, self.data)

    def step(self, positions):
        x = self.data.batch(positions)
        loss = F.mse_loss(torch.sigmoid(self.model.decoder(self.codes[positions])), x)
        _check("loss", loss)
        self._update("model", loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Test reconstruction error: per-pixel MSE and per-image sum of squared errors."""
        self.model.eval()
        se = 0.0
        for pos in _chunks(self.data.test):
            se += float((torch.sigmoid(self.model.decoder(self.codes[pos])) - self.data.batch(pos)).pow(2).sum())
        self.model.train()
        n, pixels = len(self.data.test), self.data.images[0].numel()
        return {"test_mse": se / (n * pixels), "test_sse_per_image": se / n}


@torch.no_grad()
def encode_all(model, data) -> torch.Tensor:
    """Codes (N, d) of every preloaded image from the model's frozen encoder (eval mode, the mean for VAEs)."""
    model.encoder.eval()
    codes = torch.cat([model.encoder.code(data.batch(pos)) for pos in _chunks(torch.arange(len(data.images),
                                                                                         device=data.images.device))])
    return codes


OBJECTIVES = {
    "none": NoTraining,
    "tasks": TaskRegression,
    "autoencoder": AutoEncoding,
    "factor-vae": FactorVAEObjective,
    "frozen-heads": FrozenHeads,
    "frozen-decoder": FrozenDecoder,
}


def make_objective(spec: dict, model, data, noise: torch.Generator) -> Objective:
    return OBJECTIVES[spec["objective"]](spec, model, data, noise)
