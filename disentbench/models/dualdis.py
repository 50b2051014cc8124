"""DualDis (seed 001; T. Robert, PhD thesis 2019, ch. 4 "Dual-branch structuring of the latent space for
disentangling and image editing", app. ch. 12): a two-branch auto-encoder whose class branch h_y and attribute branch
h_z are separated by adversarial classifiers.

On factor data (``[gap]``): the class y is one factor (:func:`label_factor`: shape on both procedural datasets) and
the attributes z are the concatenated one-hot codes of the other factors, one *block* per factor.

Architecture (app. Table "Architectures", NORB column, the 64×64 grey setting; ``k`` kernel, ``s`` stride,
``p`` padding, ``dec`` = ConvTranspose k4 s2 p1, other convs k3 "same"):

* E: 64k4s2, 64k4s2, 96k4s2; E_y and E_z: 96k4s2, 128k3p0, 128k2p0 (64 → 1 pixel; h_y, h_z ∈ R^128). Every encoder
  layer is followed by BatchNorm and ReLU.
* D on concat(h_y, h_z): 256k2p1, dec192, 128, dec128, 128, dec96, 96, dec64, 64, dec64, 64, 32, C; BatchNorm and
  LeakyReLU(0.2) after every layer but the last, which is linear (pixel values).
* W_y linear + softmax, W_z linear + sigmoid (eq. "ŷ = softmax(W_y h_y), ẑ = σ(W_z h_z)");
  adversaries C_y(h_z), C_z(h_y): Linear 128, ReLU, Linear 128, ReLU, Linear out.

Losses (sec. 4.3.3, eqs. L_main / L_disc and the adversarial terms; app. 12.2 hyper-parameters)::

    L_main = λ_r ‖x − x̂‖² + λ_y CE(y, W_y h_y) + λ_z BCE(z, W_z h_z)
             − λ_adv CE(y, C_y(h_z)) + λ_adv BCE(z̄, C_z(h_y)) + λ_o L_orth
    L_disc = CE(y, C_y(h_z)) + BCE(z, C_z(h_y))

θ_main (E, E_y, E_z, D, W_y, W_z) steps on L_main only and θ_disc (C_y, C_z) on L_disc only, both from the same
forward pass of the same batch (the thesis's simultaneous gradient steps). ``[gap]`` choices: ‖x − x̂‖² is the mean
squared error per pixel; BCE over z is summed over the bits of each factor's block and averaged over the factors
(each attribute factor weighs like one cross-entropy); the thesis's flipped attributes 1 − z become
z̄ = (1 − z)/(n − 1) per block (:func:`inverted_bits`; the same for binary attributes); L_orth as printed,
Σ_i Σ_j w'_i·w'_j = ‖Σ_i w'_i‖², does not penalise non-orthogonal rows, so :func:`orthogonality` uses Σ_{i≠j} (w'_i·w'_j)².

Published evaluation (sec. 4.5, Table "Comparison to the state of the art"): test accuracy of W_y on y and of W_z on
z, the **error rate** of C_y and C_z, and the mean of the four. Here z-accuracies are the argmax accuracy within each
factor block, averaged over factors ``[gap]`` (the thesis's binary attributes have no blocks). Editing
(sec. 4.7, eq. "h'_z = h_z ± ε w_{z_i}"): :func:`edit_attribute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentbench.models.base import Batch, Model, adam, check_finite
from disentbench.models.blocks import MLPHead
from disentbench.models.registry import register_model

SEED_001 = "Seed 001 (T. Robert, PhD thesis 2019: HybridNet, DualDis)"
NEEDS = ("images", "factors")
#: E, E_y / E_z (out channels, kernel, stride, padding), NORB column of the architecture table
ENCODER_LAYERS = ((64, 4, 2, 1), (64, 4, 2, 1), (96, 4, 2, 1))
BRANCH_LAYERS = ((96, 4, 2, 1), (128, 3, 1, 0), (128, 2, 1, 0))
#: D: ("conv", out, kernel, padding) with stride 1, ("dec", out) = ConvTranspose k4 s2 p1
DECODER_LAYERS = (("conv", 256, 2, 1), ("dec", 192), ("conv", 128, 3, 1), ("dec", 128), ("conv", 128, 3, 1),
                  ("dec", 96), ("conv", 96, 3, 1), ("dec", 64), ("conv", 64, 3, 1), ("dec", 64), ("conv", 64, 3, 1),
                  ("conv", 32, 3, 1))
BRANCH_DIM = BRANCH_LAYERS[-1][0]
#: what the main step asks of the adversaries: ``flip`` (the thesis: −CE(y, C_y(h_z)) and BCE(z̄, C_z(h_y))) or
#: ``confusion`` (CE against the uniform class distribution and BCE against 1/n per block: C can do no better than
#: the prior) ``[gap]``, see :meth:`DualDis.adversarial_terms`
ADVERSARIAL_OBJECTIVES = ("flip", "confusion")
#: at most this many training images (the first train positions) fit a post-hoc probe
PROBE_TRAIN = 5000


# -- labels from factor classes ------------------------------------------------------------------------------------
def label_factor(factor_sizes: Sequence[int], y_factor: int) -> int:
    """The factor read as the class y: ``y_factor`` itself, or for ``y_factor = -1`` the factor with the fewest
    classes (the first on ties) — shape on dsprites-procedural (3 classes) and shapes3d-procedural (4) ``[gap]``:
    the model sees only the factor sizes, and one reference config serves both datasets."""
    if y_factor == -1:
        return int(np.argmin(factor_sizes))
    if not 0 <= y_factor < len(factor_sizes):
        raise ValueError(f"y_factor {y_factor} out of range for {len(factor_sizes)} factors")
    return y_factor


def attribute_blocks(factor_sizes: Sequence[int], y: int) -> list[tuple[int, int, int]]:
    """(factor, first bit, n classes) of each attribute block of z: the factors other than ``y``, in dataset order."""
    blocks, start = [], 0
    for f, n in enumerate(factor_sizes):
        if f != y:
            blocks.append((f, start, int(n)))
            start += int(n)
    return blocks


def attribute_bits(factors: torch.Tensor, blocks) -> torch.Tensor:
    """z: the concatenated one-hot codes (B, Σ n) of the attribute factors."""
    return torch.cat([F.one_hot(factors[:, f], n) for f, _, n in blocks], dim=1).float()


def inverted_bits(bits: torch.Tensor, blocks) -> torch.Tensor:
    """The adversarial target of C_z ``[gap]``: within each block, (1 − z)/(n − 1) — the thesis's flipped binary
    attribute 1 − z, spread evenly over the other n − 1 classes of a categorical factor. For n = 2 it is 1 − z; the
    plain 1 − z would ask for n − 1 ones per block and outweigh every other term (≈ 31·log 32 per dSprites position
    block)."""
    return torch.cat([(1.0 - bits[:, s:s + n]) / max(n - 1, 1) for _, s, n in blocks], dim=1)


def uniform_bits(bits: torch.Tensor, blocks) -> torch.Tensor:
    """The confusion target of C_z: 1/n on every bit of an n-class block (no class preferred)."""
    return torch.cat([torch.full_like(bits[:, s:s + n], 1.0 / n) for _, s, n in blocks], dim=1)


def block_bce(logits: torch.Tensor, bits: torch.Tensor, n_blocks: int) -> torch.Tensor:
    """BCE summed over the bits of each block, averaged over blocks and the batch ``[gap]``."""
    return F.binary_cross_entropy_with_logits(logits, bits, reduction="none").sum(dim=1).mean() / n_blocks


def block_accuracy(logits: torch.Tensor, factors: torch.Tensor, blocks) -> torch.Tensor:
    """Per-sample mean over blocks of [argmax of the block's logits == the factor's class] (B,)."""
    hits = [(logits[:, s:s + n].argmax(dim=1) == factors[:, f]).float() for f, s, n in blocks]
    return torch.stack(hits, dim=1).mean(dim=1)


def orthogonality(weight: torch.Tensor) -> torch.Tensor:
    """L_orth ``[gap]``: Σ_{i≠j} (w'_i · w'_j)² over the unit-normalised rows w'_i of W_z (the printed Σ_i Σ_j w'_i·w'_j
    equals ‖Σ_i w'_i‖², which orthogonal rows do not minimise)."""
    unit = F.normalize(weight, dim=1)
    gram = unit @ unit.T
    return (gram - torch.diag(torch.diagonal(gram))).pow(2).sum()


# -- post-hoc probes -----------------------------------------------------------------------------------------------
def probe_accuracy(train_codes: np.ndarray, train_y: np.ndarray, test_codes: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a fresh multinomial logistic regression (standardised codes, lbfgs, C = 1) fitted on the
    train codes: how much of y a *linear* read-out finds in a representation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:
        return float(np.mean(test_y == train_y[0]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(train_codes, train_y)
    return float(probe.score(test_codes, test_y))


def split_codes(data, positions: torch.Tensor, needs, codes_of) -> tuple[list[np.ndarray], np.ndarray]:
    """(list of code arrays returned by ``codes_of(images)``, factor classes) over ``positions``, in batches."""
    parts, factors = [], []
    for batch in data.batches(positions, needs):
        parts.append([c.cpu().numpy() for c in codes_of(batch.images)])
        factors.append(batch.factors.cpu().numpy())
    return [np.concatenate(p) for p in zip(*parts)], np.concatenate(factors)


def probe_scores(data, needs, codes_of, names: Sequence[str], y: int) -> dict[str, float]:
    """``probe_y_from_<name>``: a fresh probe of factor ``y`` on each code of ``codes_of``, fitted on (at most
    :data:`PROBE_TRAIN` of) the train split and scored on the test split."""
    train_codes, train_f = split_codes(data, data.train[:PROBE_TRAIN], needs, codes_of)
    test_codes, test_f = split_codes(data, data.test, needs, codes_of)
    return {f"probe_y_from_{name}": probe_accuracy(a, train_f[:, y], b, test_f[:, y])
            for name, a, b in zip(names, train_codes, test_codes)}


def prior_error(classes: torch.Tensor) -> float:
    """1 − the frequency of the most common class: the error rate of a classifier that knows only the prior, the
    ceiling of an adversary's error rate (sec. 4.5, "dataset prior")."""
    return 1.0 - float(torch.bincount(classes).max()) / len(classes)


# -- networks ------------------------------------------------------------------------------------------------------
def conv_stack(in_ch: int, layers, norm_act) -> tuple[nn.Sequential, int]:
    """Conv (out, kernel, stride, padding) layers, each followed by ``norm_act(out)`` modules; returns the stack and
    its output channels."""
    mods: list[nn.Module] = []
    for out, k, s, p in layers:
        mods += [nn.Conv2d(in_ch, out, k, s, p), *norm_act(out)]
        in_ch = out
    return nn.Sequential(*mods), in_ch


def bn_relu(ch: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(ch), nn.ReLU()]


def bn_leaky(ch: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]


def dualdis_decoder(in_ch: int, channels: int) -> nn.Sequential:
    """D: :data:`DECODER_LAYERS` with BatchNorm + LeakyReLU(0.2), then a linear Conv 3×3 to ``channels``."""
    mods: list[nn.Module] = []
    for kind, out, *rest in DECODER_LAYERS:
        if kind == "dec":
            mods.append(nn.ConvTranspose2d(in_ch, out, 4, 2, 1))
        else:
            kernel, pad = rest
            mods.append(nn.Conv2d(in_ch, out, kernel, 1, pad))
        mods += bn_leaky(out)
        in_ch = out
    mods.append(nn.Conv2d(in_ch, channels, 3, 1, 1))
    return nn.Sequential(*mods)


@dataclass(frozen=True)
class DualDisConfig:
    """``y_factor``: the class factor (-1: the fewest classes, see :func:`label_factor`); loss weights of L_main;
    Adam ``lr`` and ``betas`` for both optimisers (app. 12.2)."""

    y_factor: int
    lambda_rec: float
    lambda_y: float
    lambda_z: float
    lambda_adv: float
    lambda_orth: float
    adversarial_objective: str
    lr: float
    betas: tuple[float, ...]

    def __post_init__(self):
        if self.adversarial_objective not in ADVERSARIAL_OBJECTIVES:
            raise ValueError(f"key 'adversarial_objective' must be one of {', '.join(ADVERSARIAL_OBJECTIVES)}, "
                             f"got {self.adversarial_objective!r}")
        if self.y_factor < -1:
            raise ValueError(f"key 'y_factor' must be -1 (fewest classes) or a factor index, got {self.y_factor}")


@register_model("dualdis", family="two-branch", needs=NEEDS, config=DualDisConfig,
                source=f"{SEED_001}, ch. 4 sec. 4.3 (L_main, L_disc), 4.5 (evaluation), 4.7 (editing); "
                       f"app. ch. 12 (NORB architecture, hyper-parameters)")
class DualDis(Model):
    """Two-branch auto-encoder, h_y for the class and h_z for the attributes, separated by adversaries C_y, C_z."""

    representation = "[h_y, h_z] (eval-mode BatchNorm)"

    def __init__(self, config: DualDisConfig, context):
        super().__init__(config, context)
        if not context.factor_sizes:
            raise ValueError("dualdis needs the factor sizes (context.factor_sizes)")
        self.y = label_factor(context.factor_sizes, config.y_factor)
        self.blocks = attribute_blocks(context.factor_sizes, self.y)
        n_y, n_z = context.factor_sizes[self.y], sum(n for _, _, n in self.blocks)
        self.encoder, ch = conv_stack(context.channels, ENCODER_LAYERS, bn_relu)
        self.branch_y = conv_stack(ch, BRANCH_LAYERS, bn_relu)[0]
        self.branch_z = conv_stack(ch, BRANCH_LAYERS, bn_relu)[0]
        self.decoder = dualdis_decoder(2 * BRANCH_DIM, context.channels)
        self.w_y = nn.Linear(BRANCH_DIM, n_y)
        self.w_z = nn.Linear(BRANCH_DIM, n_z)
        self.adversaries = nn.ModuleDict({
            "c_y": MLPHead(BRANCH_DIM, n_y, (BRANCH_DIM, BRANCH_DIM)),
            "c_z": MLPHead(BRANCH_DIM, n_z, (BRANCH_DIM, BRANCH_DIM)),
        })

    @property
    def code_dim(self) -> int:
        return 2 * BRANCH_DIM

    def main_parameters(self) -> list[nn.Parameter]:
        """θ_main: E, E_y, E_z, D, W_y, W_z (everything but the adversaries)."""
        return [p for name, p in self.named_parameters() if not name.startswith("adversaries.")]

    def configure_optimizers(self):
        lr, betas = self.config.lr, self.config.betas
        return {"main": adam(self.main_parameters(), lr, betas),
                "adversaries": adam(self.adversaries.parameters(), lr, betas)}

    def branches(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_y, h_z), each (B, 128)."""
        shared = self.encoder(images)
        return self.branch_y(shared).flatten(1), self.branch_z(shared).flatten(1)

    def decode(self, h_y: torch.Tensor, h_z: torch.Tensor) -> torch.Tensor:
        """x̂ = D(h_y, h_z): pixel values (B, C, 64, 64), not clamped."""
        return self.decoder(torch.cat([h_y, h_z], dim=1)[:, :, None, None])

    def encode(self, images):
        return torch.cat(self.branches(images), dim=1)

    def targets(self, factors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y classes (B,), z bits (B, Σ n))."""
        return factors[:, self.y], attribute_bits(factors, self.blocks)

    def disc_loss(self, h_y, h_z, y, z) -> torch.Tensor:
        """L_disc = CE(y, C_y(h_z)) + BCE(z, C_z(h_y)) on the codes as given (detach them to reach only C)."""
        return (F.cross_entropy(self.adversaries["c_y"](h_z), y)
                + block_bce(self.adversaries["c_z"](h_y), z, len(self.blocks)))

    def main_loss(self, x, h_y, h_z, y, z) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_main and its terms (sec. 4.3.3); the adversarial terms flow through C into the encoders."""
        c, n = self.config, len(self.blocks)
        terms = {
            "rec": F.mse_loss(self.decode(h_y, h_z), x),
            "class_y": F.cross_entropy(self.w_y(h_y), y),
            "class_z": block_bce(self.w_z(h_z), z, n),
            **self.adversarial_terms(h_y, h_z, y, z),
            "orth": orthogonality(self.w_z.weight),
        }
        weights = {"rec": c.lambda_rec, "class_y": c.lambda_y, "class_z": c.lambda_z, "adv_y": c.lambda_adv,
                   "adv_z": c.lambda_adv, "orth": c.lambda_orth}
        loss = sum(weights[k] * v for k, v in terms.items())
        return loss, terms

    def adversarial_terms(self, h_y, h_z, y, z) -> dict[str, torch.Tensor]:
        """``adv_y``, ``adv_z`` of L_main. ``flip`` (sec. 4.3.3): −CE(y, C_y(h_z)) and BCE(z̄, C_z(h_y)), which make C
        wrong but are also minimised by codes from which C reads a *permuted* label, the information kept (measured:
        docs/training.md). ``confusion``: CE(u, C_y(h_z)) with u uniform over the classes, and BCE(1/n, C_z(h_y)) per
        block, minimised only where C's prediction is the uniform one."""
        logits_y, logits_z, n = self.adversaries["c_y"](h_z), self.adversaries["c_z"](h_y), len(self.blocks)
        if self.config.adversarial_objective == "confusion":
            return {"adv_y": -F.log_softmax(logits_y, dim=1).mean(dim=1).mean(),
                    "adv_z": block_bce(logits_z, uniform_bits(z, self.blocks), n)}
        return {"adv_y": -F.cross_entropy(logits_y, y),
                "adv_z": block_bce(logits_z, inverted_bits(z, self.blocks), n)}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One forward pass, then the θ_main step on L_main and the θ_disc step on L_disc (codes detached), both
        gradients taken at the same parameters."""
        y, z = self.targets(batch.factors)
        h_y, h_z = self.branches(batch.images)
        loss, terms = self.main_loss(batch.images, h_y, h_z, y, z)
        disc = self.disc_loss(h_y.detach(), h_z.detach(), y, z)
        check_finite("main loss", loss)
        check_finite("adversary loss", disc)
        self.update("main", loss)
        self.update("adversaries", disc)
        return {"loss": loss.detach(), "disc": disc.detach(), **{k: v.detach() for k, v in terms.items()}}

    @torch.no_grad()
    def published_scores(self, data) -> dict[str, float]:
        """The four numbers of the thesis's table on the test split, their mean (``aggregate``), the prior ceiling of
        the C_y error rate and the test reconstruction MSE; fractions in [0, 1]."""
        sums = dict.fromkeys(("acc_y", "acc_z", "adv_acc_y", "adv_acc_z", "mse"), 0.0)
        for batch in data.batches(data.test, self.needs):
            y, _ = self.targets(batch.factors)
            h_y, h_z = self.branches(batch.images)
            sums["acc_y"] += float((self.w_y(h_y).argmax(dim=1) == y).sum())
            sums["acc_z"] += float(block_accuracy(self.w_z(h_z), batch.factors, self.blocks).sum())
            sums["adv_acc_y"] += float((self.adversaries["c_y"](h_z).argmax(dim=1) == y).sum())
            sums["adv_acc_z"] += float(block_accuracy(self.adversaries["c_z"](h_y), batch.factors, self.blocks).sum())
            sums["mse"] += float((self.decode(h_y, h_z) - batch.images).pow(2).mean(dim=(1, 2, 3)).sum())
        n = len(data.test)
        four = {"acc_y": sums["acc_y"] / n, "acc_z": sums["acc_z"] / n,
                "adv_error_y": 1.0 - sums["adv_acc_y"] / n, "adv_error_z": 1.0 - sums["adv_acc_z"] / n}
        return {**four, "aggregate": sum(four.values()) / 4, "adv_error_y_ceiling": prior_error(
            data.factors[data.test, self.y]), "test_mse": sums["mse"] / n}

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """:meth:`published_scores` plus fresh post-hoc probes of y from h_z and from h_y (eval mode)."""
        self.eval()
        scores = {**self.published_scores(data),
                  **probe_scores(data, self.needs, self.branches, ("hy", "hz"), self.y)}
        self.train()
        return scores


@torch.no_grad()
def attribute_index(model: DualDis, factor: int, value: int) -> int:
    """Row of W_z (bit of z) for class ``value`` of factor ``factor`` (dataset order; not the class factor)."""
    for f, start, n in model.blocks:
        if f == factor:
            if not 0 <= value < n:
                raise ValueError(f"factor {factor} has {n} classes, got {value}")
            return start + value
    raise ValueError(f"factor {factor} is not an attribute of this model (the class factor is {model.y})")


@torch.no_grad()
def edit_attribute(model: DualDis, images: torch.Tensor, factor: int, value: int, epsilon: float) -> torch.Tensor:
    """Image editing (thesis sec. 4.7, eq. "h'_z = h_z ± ε w_{z_i}"; app. 12.3): encode, move h_z by ε along the row of
    W_z for class ``value`` of ``factor``, decode D(h_y, h'_z). Returns pixel values clamped to [0, 1], in eval mode
    (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    h_y, h_z = model.branches(images)
    direction = model.w_z.weight[attribute_index(model, factor, value)]
    edited = model.decode(h_y, h_z + epsilon * direction).clamp(0.0, 1.0)
    model.train(was_training)
    return edited
