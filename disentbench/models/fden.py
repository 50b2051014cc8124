"""FDEN — Factorized Disentangler-Entangler Network (seed 002), a plug-in on the latent z of a frozen auto-encoder.

The frozen network (the paper's ALI, here an ``ae`` or ``vae`` run given by ``--from``; its code z is the encoder
output or posterior mean, computed once for the run by the loop) is never changed. On z (sec. 3.1–3.3, app. B Table 2):

* Disentangler θ: z_dec = D_dec(z) ∈ R^{2·Dim}, f_ide = D_ide(z_dec), f_sty = D_sty(z_dec) (``disentangler_input =
  "full"``, the text; ``"halves"``: D_ide reads the first and D_sty the second half of z_dec, the authors' code).
* Entangler φ: z̃ = E_enc(E_ide(f_ide) ⊕ E_sty(f_sty)); L_R = ‖z − z̃‖² (eq. 3).
* Statistics network ξ: T on f_ide ⊕ f_sty behind a gradient-reversal layer; the Donsker–Varadhan bound (eq. 4)
  L_M = mean_i T(f_ide,i, f_sty,i) − log mean_i exp T(f_ide,i, f_sty,π(i)), π a permutation of the batch.
* Alignment: episodic C-way K-shot classification of the identity factor from f_ide (eq. 5); the head is a
  prototypical network (Snell et al. 2017: p_c = mean of the class's support features, logits −‖f − p_c‖²) ``[gap]``.

The loss is L = α L_R + β L_C − γ L_M (eq. 6). T ascends L_M; through the reversal θ descends it, and that gradient
is clipped adaptively (eq. 7): g_a = min(‖g_u‖, ‖g_m‖) g_m/‖g_m‖, with g_u = ∂(α L_R + β L_C)/∂θ and g_m the
reversed gradient γ ∂L_M/∂θ. Only θ is clipped (L_M reaches θ and ξ, not φ).

On factor datasets (``[gap]``): the identity is one factor (``identity_factor``; −1: the fewest classes, shape on both
procedural datasets), every episode has all its classes (C = number of classes), and episodes are drawn from the loop's
minibatch with the run's noise generator. The scored representation is [f_ide, f_sty] in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.models.base import Batch, Model, adam, check_finite
from disentbench.models.blocks import reverse_gradient
from disentbench.models.config import choice
from disentbench.models.dualdis import label_factor
from disentbench.models.registry import register_model

SEED_002 = "Seed 002 (FDEN: Factorized Disentangler-Entangler Network)"
#: hidden widths of app. B Table 2
D_DEC, D_BRANCH, E_BRANCH, E_ENC, STATISTICS = (512, 512, 512), (512, 512), (256, 256), (512, 512, 512), (1024, 256, 64)
INITS = ("truncated_normal", "default")
DISENTANGLER_INPUTS = ("full", "halves")
CLIP_SCOPES = ("global", "tensor", "none")
#: episodes drawn at once in evaluation (bounds the (episodes, n_test) key matrix)
EVAL_EPISODE_CHUNK = 50


# -- building blocks -----------------------------------------------------------------------------------------------
def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float, slope: float) -> nn.Sequential:
    """App. B Table 2: per hidden layer Linear → (BatchNorm on the first) → LeakyReLU(slope) → Dropout, then a
    linear output layer (``[gap]``: the table's dropout on output layers is left out; it would randomise the factors)."""
    layers: list[nn.Module] = []
    prev = in_dim
    for i, width in enumerate(hidden):
        layers.append(nn.Linear(prev, width))
        if i == 0:
            layers.append(nn.BatchNorm1d(width))
        layers += [nn.LeakyReLU(slope), nn.Dropout(dropout)]
        prev = width
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


def truncated_normal_init(module: nn.Module, std: float) -> None:
    """App. B Table 2: weights of every Linear from N(0, std²) truncated at ±2 std, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.bias)


def donsker_varadhan(statistics: nn.Module, f_ide: torch.Tensor, f_sty: torch.Tensor,
                     perm: torch.Tensor) -> torch.Tensor:
    """Eq. 4 (MINE, Belghazi et al. 2018, eq. 2): mean T(joint) − log mean exp T(marginal), the marginal pairing
    f_ide with f_sty shuffled by ``perm``. Joint and marginal pass T in one batch (its BatchNorm sees both)."""
    pairs = torch.cat([torch.cat([f_ide, f_sty], 1), torch.cat([f_ide, f_sty[perm]], 1)])
    scores = statistics(pairs).squeeze(1)
    joint, marginal = scores[:len(f_ide)], scores[len(f_ide):]
    return joint.mean() - (torch.logsumexp(marginal, 0) - math.log(len(marginal)))


def adaptive_clip(g_u: Sequence[torch.Tensor], g_m: Sequence[torch.Tensor], scope: str = "global"
                  ) -> list[torch.Tensor]:
    """Eq. 7: g_a = min(‖g_u‖, ‖g_m‖) · g_m / ‖g_m‖ (g_a = 0 where g_m = 0). ``global``: the norms over all of θ
    (the equation); ``tensor``: per parameter tensor (the authors' ``train_op``); ``none``: g_m unchanged."""
    if scope == "none":
        return list(g_m)

    def scaled(u: Sequence[torch.Tensor], m: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        norm_u = torch.sqrt(sum(g.pow(2).sum() for g in u))
        norm_m = torch.sqrt(sum(g.pow(2).sum() for g in m))
        factor = torch.where(norm_m > 0, torch.minimum(norm_u, norm_m) / norm_m.clamp_min(1e-30), 0.0)
        return [g * factor for g in m]

    if scope == "global":
        return scaled(g_u, g_m)
    return [scaled([u], [m])[0] for u, m in zip(g_u, g_m)]


def draw_episodes(labels: torch.Tensor, n_classes: int, shots: int, episodes: int,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """C-way K-shot episodes over all C classes (sec. 3.2, eq. 5) from the rows of ``labels``: (support positions
    (E, C, K), support mask (E, C, K), query positions (E,), query classes (E,)). The query class is uniform over
    the classes with two rows or more; no row is drawn twice in an episode. ``[gap]``: a class with fewer than
    K + 1 rows uses the rows it has (one fewer for the query class), and a class without rows is left out."""
    shots = min(shots, len(labels) - 1)
    counts = torch.bincount(labels, minlength=n_classes)
    eligible = (counts >= 2).nonzero().squeeze(1)
    if len(eligible) == 0:
        raise ValueError(f"no identity class has two rows among these {len(labels)} rows: no episode can be drawn")
    keys = torch.rand((episodes, len(labels)), generator=generator, device=labels.device)
    picks = torch.stack([keys.masked_fill(labels != c, 2.0).argsort(dim=1)[:, :shots + 1]
                         for c in range(n_classes)], dim=1)
    target = eligible[torch.randint(len(eligible), (episodes,), generator=generator, device=labels.device)]
    is_query = F.one_hot(target, n_classes).bool()
    k = torch.minimum(torch.full_like(is_query, shots, dtype=counts.dtype), counts - is_query.long())  # (E, C)
    mask = torch.arange(shots, device=labels.device) < k[:, :, None]
    rows = torch.arange(episodes, device=labels.device)
    return picks[:, :, :shots], mask, picks[rows, target, k[rows, target]], target


def prototypical_logits(features: torch.Tensor, support: torch.Tensor, mask: torch.Tensor,
                        query: torch.Tensor) -> torch.Tensor:
    """Snell et al. 2017, eq. 1–2: prototypes p_c = mean of the class's support features, logits (E, C) =
    −‖f(q) − p_c‖²; −inf for a class without support rows."""
    weights = mask.to(features.dtype)[..., None]
    n = weights.sum(dim=2)
    prototypes = (features[support] * weights).sum(dim=2) / n.clamp_min(1.0)
    logits = -(features[query][:, None, :] - prototypes).pow(2).sum(dim=2)
    return logits.masked_fill(n.squeeze(2) == 0, float("-inf"))


# -- the model -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FDENConfig:
    """Factor width (``factor_dim``; 0: Dim = the upstream code width), ``disentangler_input`` full|halves, dropout,
    LeakyReLU slope, ``init`` truncated_normal|default, loss weights α, β, γ, ``clip_scope`` global|tensor|none, the
    identity factor and episodes (``shots`` K, ``episodes`` per step), Adam, and the evaluation protocol (episodes,
    seed, steps / batch / lr of the fresh MINE estimate)."""

    factor_dim: int
    disentangler_input: str
    dropout: float
    leaky_slope: float
    init: str
    init_std: float
    alpha: float
    beta: float
    gamma: float
    clip_scope: str
    identity_factor: int
    shots: int
    episodes: int
    lr: float
    betas: tuple[float, ...]
    eval_episodes: int
    eval_seed: int
    mine_eval_steps: int
    mine_eval_batch: int
    mine_eval_lr: float

    def __post_init__(self):
        choice(self.init, INITS, "init")
        choice(self.disentangler_input, DISENTANGLER_INPUTS, "disentangler_input")
        choice(self.clip_scope, CLIP_SCOPES, "clip_scope")
        if self.factor_dim < 0 or self.identity_factor < -1 or min(self.shots, self.episodes, self.eval_episodes,
                                                                   self.mine_eval_steps, self.mine_eval_batch) < 1:
            raise ValueError("keys 'factor_dim' >= 0, 'identity_factor' >= -1 and 'shots', 'episodes', "
                             "'eval_episodes', 'mine_eval_steps', 'mine_eval_batch' >= 1 required")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"key 'dropout' must be in [0, 1), got {self.dropout}")


@register_model("fden", family="plug-in", needs=("factors", "upstream"), config=FDENConfig, upstream=("ae", "vae"),
                source=f"{SEED_002}: sec. 3.1-3.3, eq. 3-7, app. B Table 2; authors' code "
                       "(wltjr1007/Factors-Decomposer-Entangler-Network) models/DE_model.py")
class FDEN(Model):
    """Disentangler, entangler and MINE statistics network on the frozen latent of an ``ae`` / ``vae`` run."""

    representation = "[f_ide, f_sty] of the disentangler on the frozen upstream code (eval mode)"

    def __init__(self, config: FDENConfig, context):
        super().__init__(config, context)
        if not context.factor_sizes:
            raise ValueError("fden needs the factor sizes (context.factor_sizes)")
        if config.identity_factor >= len(context.factor_sizes):
            raise ValueError(f"identity_factor {config.identity_factor} out of range for "
                             f"{len(context.factor_sizes)} factors")
        self.upstream = context.upstream.requires_grad_(False).eval()
        self.identity = label_factor(context.factor_sizes, config.identity_factor)
        self.n_classes = int(context.factor_sizes[self.identity])
        z_dim = self.upstream.code_dim
        d = config.factor_dim or z_dim
        self.factor_dim = d
        branch_in = d if config.disentangler_input == "halves" else 2 * d
        args = (config.dropout, config.leaky_slope)
        self.disentangler = nn.ModuleDict({"dec": mlp(z_dim, D_DEC, 2 * d, *args),
                                           "ide": mlp(branch_in, D_BRANCH, d, *args),
                                           "sty": mlp(branch_in, D_BRANCH, d, *args)})
        self.entangler = nn.ModuleDict({"ide": mlp(d, E_BRANCH, d, *args), "sty": mlp(d, E_BRANCH, d, *args),
                                        "enc": mlp(2 * d, E_ENC, z_dim, *args)})
        self.statistics = mlp(2 * d, STATISTICS, 1, *args)
        if config.init == "truncated_normal":
            truncated_normal_init(self.trained(), config.init_std)

    def trained(self) -> nn.ModuleList:
        """θ, φ and ξ: every trained module (not the frozen upstream)."""
        return nn.ModuleList([self.disentangler, self.entangler, self.statistics])

    def train(self, mode: bool = True):
        """Train/eval mode for FDEN's modules; the frozen upstream always stays in eval mode."""
        super().train(mode)
        self.upstream.eval()
        return self

    @property
    def code_dim(self) -> int:
        return 2 * self.factor_dim

    def configure_optimizers(self):
        return {"model": adam(self.trained().parameters(), self.config.lr, self.config.betas)}

    # -- forward pieces ----------------------------------------------------------------------------------------
    def disentangle(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_ide, f_sty) of the disentangler D at upstream codes z."""
        z_dec = self.disentangler["dec"](z)
        if self.config.disentangler_input == "halves":
            ide_in, sty_in = z_dec.chunk(2, dim=1)
        else:
            ide_in = sty_in = z_dec
        return self.disentangler["ide"](ide_in), self.disentangler["sty"](sty_in)

    def entangle(self, f_ide: torch.Tensor, f_sty: torch.Tensor) -> torch.Tensor:
        """z̃ = E_enc(E_ide(f_ide) ⊕ E_sty(f_sty))."""
        return self.entangler["enc"](torch.cat([self.entangler["ide"](f_ide), self.entangler["sty"](f_sty)], 1))

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One Adam step on eq. 6 with the reversed, adaptively clipped MINE gradient on θ (eq. 7)."""
        cfg, z = self.config, batch.upstream
        f_ide, f_sty = self.disentangle(z)
        recon = (z - self.entangle(f_ide, f_sty)).pow(2).sum(dim=1).mean()
        episodes = draw_episodes(batch.factors[:, self.identity], self.n_classes, cfg.shots, cfg.episodes,
                                 batch.noise)
        logits, target = prototypical_logits(f_ide, *episodes[:3]), episodes[3]
        episode_ce = F.cross_entropy(logits, target)
        perm = torch.randperm(len(z), generator=batch.noise, device=z.device)
        reversed_factors = reverse_gradient(torch.cat([f_ide, f_sty], 1))
        mine = donsker_varadhan(self.statistics, *reversed_factors.split(self.factor_dim, 1), perm)
        main_loss, mine_loss = cfg.alpha * recon + cfg.beta * episode_ce, -cfg.gamma * mine
        loss = main_loss + mine_loss
        check_finite("loss", loss)
        theta = list(self.disentangler.parameters())
        phi, xi = list(self.entangler.parameters()), list(self.statistics.parameters())
        g_u = torch.autograd.grad(main_loss, theta + phi, retain_graph=True, allow_unused=True)
        g_m = torch.autograd.grad(mine_loss, theta + xi, allow_unused=True)
        g_u = [torch.zeros_like(p) if g is None else g for p, g in zip(theta + phi, g_u)]
        g_m = [torch.zeros_like(p) if g is None else g for p, g in zip(theta + xi, g_m)]
        clipped = adaptive_clip(g_u[:len(theta)], g_m[:len(theta)], cfg.clip_scope)
        grads = [u + a for u, a in zip(g_u, clipped)] + g_u[len(theta):] + g_m[len(theta):]
        for p, g in zip(theta + phi + xi, grads):
            p.grad = g
        self.optimizers["model"].step()
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        return {"loss": loss.detach(), "recon": recon.detach(), "episode_ce": episode_ce.detach(),
                "episode_accuracy": accuracy.detach(), "mine": mine.detach()}

    # -- representation ----------------------------------------------------------------------------------------
    def factors_of(self, z: torch.Tensor) -> torch.Tensor:
        """[f_ide, f_sty] at upstream codes z."""
        return torch.cat(self.disentangle(z), dim=1)

    def encode(self, images):
        return self.factors_of(self.upstream.encode(images))

    def representations(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``ide_sty`` (the scored [f_ide, f_sty]), ``ide`` (f_ide) and ``sty`` (f_sty)."""
        f = self.encode(images)
        return {"ide_sty": f, "ide": f[:, :self.factor_dim], "sty": f[:, self.factor_dim:]}

    # -- own protocol ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """On the test split (eval mode): prototypical episode accuracy from f_ide and from f_sty (``eval_episodes``
        C-way K-shot episodes, seeded by ``eval_seed``; chance 1/C), the reconstruction ratio
        mean ‖z − z̃‖² / Σ_d Var(z_d), and a fresh MINE estimate of I(f_ide; f_sty) (:meth:`fresh_mine`)."""
        cfg = self.config
        self.eval()
        z_test = data.upstream[data.test]
        f_test = torch.cat([self.factors_of(z) for z in z_test.split(4096)])
        f_train = torch.cat([self.factors_of(z) for z in data.upstream[data.train].split(4096)])
        z_rec = torch.cat([self.entangle(*f.split(self.factor_dim, 1)) for f in f_test.split(4096)])
        self.train()
        labels = data.factors[data.test, self.identity]
        gen = torch.Generator(device=z_test.device).manual_seed(cfg.eval_seed)
        correct = torch.zeros(2, dtype=torch.float64)
        for start in range(0, cfg.eval_episodes, EVAL_EPISODE_CHUNK):
            n = min(EVAL_EPISODE_CHUNK, cfg.eval_episodes - start)
            *episodes, target = draw_episodes(labels, self.n_classes, cfg.shots, n, gen)
            for i, f in enumerate(f_test.split(self.factor_dim, 1)):
                correct[i] += float((prototypical_logits(f, *episodes).argmax(1) == target).sum())
        accuracy = correct / cfg.eval_episodes
        ratio = (z_test - z_rec).pow(2).sum(1).mean() / z_test.var(dim=0, unbiased=False).sum().clamp_min(1e-12)
        return {"episode_accuracy_ide": float(accuracy[0]), "episode_accuracy_sty": float(accuracy[1]),
                "episode_chance": 1.0 / self.n_classes, "recon_ratio": float(ratio),
                "mi_ide_sty": self.fresh_mine(f_train, f_test)}

    def fresh_mine(self, f_train: torch.Tensor, f_test: torch.Tensor) -> float:
        """I(f_ide; f_sty) by a statistics network trained from scratch (seed ``eval_seed``; ``mine_eval_steps`` Adam
        steps of batch ``mine_eval_batch`` at ``mine_eval_lr`` ascending eq. 4 on the training factors), reported as
        eq. 4 on the test factors with a seeded permutation. The global RNGs are left as they were."""
        cfg, d = self.config, self.factor_dim
        devices = [f_train.device] if f_train.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(cfg.eval_seed)
            critic = mlp(2 * d, STATISTICS, 1, cfg.dropout, cfg.leaky_slope).to(f_train.device)
            opt = torch.optim.Adam(critic.parameters(), lr=cfg.mine_eval_lr)
            gen = torch.Generator(device=f_train.device).manual_seed(cfg.eval_seed)
            size = min(cfg.mine_eval_batch, len(f_train))
            for _ in range(cfg.mine_eval_steps):
                rows = f_train[torch.randperm(len(f_train), generator=gen, device=f_train.device)[:size]]
                perm = torch.randperm(size, generator=gen, device=f_train.device)
                loss = -donsker_varadhan(critic, rows[:, :d], rows[:, d:], perm)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            critic.eval()
            with torch.no_grad():
                perm = torch.randperm(len(f_test), generator=gen, device=f_test.device)
                return float(donsker_varadhan(critic, f_test[:, :d], f_test[:, d:], perm))
