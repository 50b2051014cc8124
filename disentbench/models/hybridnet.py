"""HybridNet (seed 001; T. Robert, PhD thesis 2019, ch. 3 "HybridNet: classification and reconstruction cooperation
for semi-supervised learning", app. ch. 11; ECCV 2018 code ``hybridnet/models/main_hybrid.py``).

Two encoders, discriminative E_c and unsupervised E_u, each the seed-004 conv stack cut at 4×4 (Conv 4×4/2 with 32,
32, 64, 128 channels, 64 → 4 pixels) ``[gap]``, with LeakyReLU of slope ``negative_slope`` (0.1: ConvLarge's, the
thesis's network, Laine & Aila 2017 Table 5 and Tarvainen & Valpola 2017 app. B; 0: the seed-004 stack's ReLU,
whose channels die at the thesis's Adam 3e-3 and leave GAP codes constant, docs/training.md); a linear classifier
C on the global-average-pooled h_c; two mirrored decoders D_c, D_u (ConvTranspose 4×4/2 with 64, 32, 32, C
channels, ReLU but the last) ``[gap]`` (the thesis unpools D_u and upsamples D_c), whose outputs add:
x̂ = x̂_c + x̂_u (sec. 3.3.1). The loss (sec. 3.3.2-3.3.4)::

    L = λ_c Σ_labelled CE(y, C(GAP(h_c))) / B + λ_r ℓ_bal + λ_i Σ_{b ∈ {c,u}} Σ_l MSE(ĥ_{b,l}, sg(h_{b,l}))
        + λ_s ramp(epoch) Ω_stab

* ℓ_bal, branch balancing (eq. "ℓ_br-balance"; code ``reconstruction_wb``), per sample: with e_b = MSE(x̂_b, x),
  ‖x̂_c + sg(x̂_u) − x‖² if e_c > e_u, else ‖sg(x̂_c) + x̂_u − x‖²: only the worse branch gets the gradient.
* intermediate reconstructions: decoder activations ĥ_{b,l} against the encoder activations of the same size
  (32×32, 16×16, 8×8), the targets detached.
* Ω_stab, Mean Teacher (Tarvainen & Valpola 2017): Σ_k (softmax(student)_k − softmax(teacher)_k)² / K averaged
  over the batch, the teacher the exponential moving average of E_c and C with decay min(1 − 1/(t + 1), 0.97) after
  update t (code ``update_ema_variables``), kept as buffers (checkpointed, never optimised); ramp(e) =
  exp(−5 (1 − min(1, e / rampup))²).

Semi-supervised on factor data ``[gap]``: y is one factor (:func:`~disentbench.models.dualdis.label_factor`: shape),
a fraction of the train split is labelled — the rows whose grid index has the smallest keys of a ``label_seed``-seeded
stream, so the set depends on neither the training seed nor the subset — and each step appends ``labelled_batch``
labelled images (drawn with replacement, from the run's noise generator) to the loop's batch, which is used
unlabelled: the thesis's 20 labelled + 80 unlabelled batches. No augmentation ``[gap]``: the geometric
transformations of the thesis would change factor values; student and teacher see the same image. The scored
representation is [GAP(h_c), GAP(h_u)].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentbench.models.base import Batch, Model, adam, check_finite
from disentbench.models.blocks import ENCODER_CHANNELS
from disentbench.models.dualdis import NEEDS, SEED_001, label_factor, probe_scores
from disentbench.models.registry import register_model

#: the seed-004 encoder cut at 4×4 pixels
STACK = ENCODER_CHANNELS[:4]
CODE_CHANNELS = STACK[-1]


def labelled_positions(grid: np.ndarray, train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The ``max(1, round(fraction · n_train))`` train positions whose grid indices have the smallest keys of the
    stream ``default_rng(seed).random()`` (key of grid index i = the stream's i-th number), sorted."""
    keys = np.random.default_rng(seed).random(int(grid.max()) + 1)[grid[train]]
    k = max(1, int(round(fraction * len(train))))
    return np.sort(train[np.argsort(keys, kind="stable")[:k]])


def balanced_reconstruction(x: torch.Tensor, x_c: torch.Tensor, x_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ℓ_bal averaged over the batch, share of samples whose gradient goes to the c branch): per sample, the MSE of
    x̂_c + sg(x̂_u) if branch c alone reconstructs worse than branch u (e_c > e_u), else of sg(x̂_c) + x̂_u."""
    def per_sample(a: torch.Tensor) -> torch.Tensor:
        return (a - x).pow(2).flatten(1).mean(dim=1)

    to_c = per_sample(x_c.detach()) > per_sample(x_u.detach())
    loss = torch.where(to_c, per_sample(x_c + x_u.detach()), per_sample(x_c.detach() + x_u))
    return loss.mean(), to_c.float().mean()


def softmax_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean Teacher consistency: Σ_k (softmax(student)_k − softmax(teacher)_k)² / K, mean over the batch; the teacher
    logits are a target (detached)."""
    diff = F.softmax(student, dim=1) - F.softmax(teacher.detach(), dim=1)
    return diff.pow(2).sum(dim=1).mean() / student.shape[1]


def rampup(epoch: int, length: int) -> float:
    """exp(−5 (1 − t)²), t = min(1, epoch / length) (Laine & Aila 2017; 1 when ``length`` is 0)."""
    t = 1.0 if length <= 0 else min(1.0, epoch / length)
    return math.exp(-5.0 * (1.0 - t) ** 2)


class StackEncoder(nn.Module):
    """The seed-004 conv stack to 4×4, LeakyReLU(``negative_slope``) after each conv (ReLU at 0); returns every
    layer's activation (32×32, 16×16, 8×8, 4×4)."""

    def __init__(self, channels: int, negative_slope: float):
        super().__init__()
        ins = (channels, *STACK[:-1])
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(i, o, 4, 2, 1), nn.LeakyReLU(negative_slope) if negative_slope else nn.ReLU())
            for i, o in zip(ins, STACK))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        acts = []
        for layer in self.layers:
            x = layer(x)
            acts.append(x)
        return acts


class StackDecoder(nn.Module):
    """Mirror of :class:`StackEncoder`: 4×4 code → activations at 8×8, 16×16, 32×32 (matching the encoder's) and the
    linear 64×64 partial reconstruction."""

    def __init__(self, channels: int):
        super().__init__()
        outs = (*reversed(STACK[:-1]), channels)
        ins = tuple(reversed(STACK))
        self.layers = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs))

    def forward(self, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        acts = []
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
            acts.append(h)
        return acts, self.layers[-1](h)


class DiscriminativeBranch(nn.Module):
    """E_c and the classifier C on GAP(h_c): x → (activations, logits). The Mean Teacher averages this module."""

    def __init__(self, channels: int, n_classes: int, negative_slope: float):
        super().__init__()
        self.encoder = StackEncoder(channels, negative_slope)
        self.classifier = nn.Linear(CODE_CHANNELS, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        acts = self.encoder(x)
        return acts, self.classifier(acts[-1].mean(dim=(2, 3)))


class EMATeacher(nn.Module):
    """Exponential moving averages of a module's parameters, held as buffers (saved and restored with the state_dict,
    never seen by an optimiser); :meth:`forward` runs the module with the averaged weights."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.names = [name for name, _ in module.named_parameters()]
        for name, p in module.named_parameters():
            self.register_buffer(name.replace(".", "__"), p.detach().clone())

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name.replace(".", "__")) for name in self.names}

    @torch.no_grad()
    def update(self, module: nn.Module, decay: float) -> None:
        """w̄ ← decay · w̄ + (1 − decay) · w for every parameter w of ``module``."""
        averages = self.weights()
        for name, p in module.named_parameters():
            averages[name].mul_(decay).add_(p.detach(), alpha=1.0 - decay)

    @torch.no_grad()
    def forward(self, module: nn.Module, *args):
        return torch.func.functional_call(module, self.weights(), args)


@dataclass(frozen=True)
class HybridNetConfig:
    """``y_factor`` (-1: the fewest classes), the labelled share and its seed, labelled images per step, loss weights,
    Mean Teacher decay and ramp, Adam ``lr`` and ``betas``, the encoders' LeakyReLU ``negative_slope``."""

    y_factor: int
    labelled_fraction: float
    label_seed: int
    labelled_batch: int
    lambda_class: float
    lambda_rec: float
    lambda_inter: float
    lambda_stability: float
    stability_rampup_epochs: int
    ema_decay: float
    lr: float
    betas: tuple[float, ...]
    negative_slope: float = 0.0  # checkpoints made before the key existed had ReLU encoders

    def __post_init__(self):
        if self.y_factor < -1:
            raise ValueError(f"key 'y_factor' must be -1 (fewest classes) or a factor index, got {self.y_factor}")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ValueError(f"key 'labelled_fraction' must be in (0, 1], got {self.labelled_fraction}")
        if self.labelled_batch < 1:
            raise ValueError(f"key 'labelled_batch' must be >= 1, got {self.labelled_batch}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"key 'ema_decay' must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.negative_slope < 1.0:
            raise ValueError(f"key 'negative_slope' must be in [0, 1), got {self.negative_slope}")


@register_model("hybridnet", family="two-branch", needs=NEEDS, config=HybridNetConfig,
                source=f"{SEED_001}, ch. 3 sec. 3.3 (architecture, branch balancing, intermediate reconstructions, "
                       f"stability), app. ch. 11; ECCV 2018 code main_hybrid.py")
class HybridNet(Model):
    """Discriminative and unsupervised branches whose partial reconstructions add; semi-supervised on one factor."""

    representation = "[GAP(h_c), GAP(h_u)]"

    def __init__(self, config: HybridNetConfig, context):
        super().__init__(config, context)
        if not context.factor_sizes:
            raise ValueError("hybridnet needs the factor sizes (context.factor_sizes)")
        self.y = label_factor(context.factor_sizes, config.y_factor)
        self.discriminative = DiscriminativeBranch(context.channels, context.factor_sizes[self.y],
                                                   config.negative_slope)
        self.unsupervised = StackEncoder(context.channels, config.negative_slope)
        self.decoder_c = StackDecoder(context.channels)
        self.decoder_u = StackDecoder(context.channels)
        self.teacher = EMATeacher(self.discriminative)
        self.data = None
        self.labelled = None

    @property
    def code_dim(self) -> int:
        return 2 * CODE_CHANNELS

    def configure_optimizers(self):
        return {"model": adam(self.parameters(), self.config.lr, self.config.betas)}

    def prepare(self, data) -> None:
        """Fix the labelled train positions (:func:`labelled_positions`) and keep the run data to draw them from."""
        train = data.train.cpu().numpy()
        chosen = labelled_positions(data.grid, train, self.config.labelled_fraction, self.config.label_seed)
        self.data, self.labelled = data, torch.from_numpy(chosen).to(data.train.device)

    def forward_all(self, x: torch.Tensor) -> dict:
        """Activations, logits and the partial and full reconstructions of both branches."""
        acts_c, logits = self.discriminative(x)
        acts_u = self.unsupervised(x)
        inter_c, x_c = self.decoder_c(acts_c[-1])
        inter_u, x_u = self.decoder_u(acts_u[-1])
        return {"acts_c": acts_c, "acts_u": acts_u, "inter_c": inter_c, "inter_u": inter_u, "logits": logits,
                "x_c": x_c, "x_u": x_u}

    def encode(self, images):
        out = self.discriminative.encoder(images)[-1], self.unsupervised(images)[-1]
        return torch.cat([h.mean(dim=(2, 3)) for h in out], dim=1)

    def labelled_batch(self, noise: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``labelled_batch`` labelled (images, classes), drawn with replacement from the labelled positions."""
        if self.labelled is None:
            raise RuntimeError("hybridnet: call prepare(data) before training (it fixes the labelled images)")
        pick = torch.randint(len(self.labelled), (self.config.labelled_batch,), generator=noise,
                             device=self.labelled.device)
        positions = self.labelled[pick]
        return self.data.float_images(positions), self.data.factors[positions, self.y]

    @staticmethod
    def intermediate_loss(out: dict) -> torch.Tensor:
        """Σ over branches and the three inner levels of MSE(ĥ_{b,l}, sg(h_{b,l}))."""
        total = 0.0
        for b in ("c", "u"):
            for decoded, target in zip(out[f"inter_{b}"], reversed(out[f"acts_{b}"][:-1])):
                total = total + F.mse_loss(decoded, target.detach())
        return total

    def losses(self, x: torch.Tensor, y: torch.Tensor, n_labelled: int, epoch: int) -> tuple[torch.Tensor, dict]:
        """The loss on images ``x`` whose last ``n_labelled`` rows carry the labels ``y``."""
        c = self.config
        out = self.forward_all(x)
        logits = out["logits"]
        terms = {"class": F.cross_entropy(logits[len(x) - n_labelled:], y, reduction="sum") / len(x)}
        terms["balance"], share_c = balanced_reconstruction(x, out["x_c"], out["x_u"])
        terms["inter"] = self.intermediate_loss(out)
        terms["stability"] = softmax_mse(logits, self.teacher(self.discriminative, x)[1])
        ramp = rampup(epoch, c.stability_rampup_epochs)
        loss = (c.lambda_class * terms["class"] + c.lambda_rec * terms["balance"] + c.lambda_inter * terms["inter"]
                + c.lambda_stability * ramp * terms["stability"])
        return loss, {**terms, "share_c": share_c}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update on the loop's batch (unlabelled) plus the labelled stream, then the teacher's average."""
        images, y = self.labelled_batch(batch.noise)
        loss, terms = self.losses(torch.cat([batch.images, images]), y, len(y), batch.epoch)
        check_finite("loss", loss)
        self.update("model", loss)
        self.teacher.update(self.discriminative, min(1.0 - 1.0 / (batch.step + 2), self.config.ema_decay))
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Test accuracy of the student's and the teacher's classifier, test MSE of x̂, x̂_c and x̂_u, the share of test
        samples branch balancing would route to c, fresh probes of y from GAP(h_c) and GAP(h_u), labelled count."""
        self.eval()
        sums = dict.fromkeys(("acc", "acc_teacher", "mse", "mse_c", "mse_u", "share_c"), 0.0)
        for batch in data.batches(data.test, self.needs):
            x, y = batch.images, batch.factors[:, self.y]
            out = self.forward_all(x)
            sums["acc"] += float((out["logits"].argmax(dim=1) == y).sum())
            sums["acc_teacher"] += float((self.teacher(self.discriminative, x)[1].argmax(dim=1) == y).sum())
            for key, rec in (("mse", out["x_c"] + out["x_u"]), ("mse_c", out["x_c"]), ("mse_u", out["x_u"])):
                sums[key] += float((rec - x).pow(2).mean(dim=(1, 2, 3)).sum())
            sums["share_c"] += float(balanced_reconstruction(x, out["x_c"], out["x_u"])[1]) * len(x)
        scores = {k: v / len(data.test) for k, v in sums.items()}
        scores.update(probe_scores(data, self.needs, self.pooled_codes, ("hc", "hu"), self.y))
        self.train()
        return {**scores, "n_labelled": 0 if self.labelled is None else len(self.labelled)}

    def pooled_codes(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(GAP(h_c), GAP(h_u))."""
        codes = self.encode(images)
        return codes[:, :CODE_CHANNELS], codes[:, CODE_CHANNELS:]
