"""FDEN (seed 002): the reversal sign and the clipping rule on hand-made gradients, the episodes, the training step's
gradients, the frozen upstream, falling losses, the representation and its own protocol, refused upstream runs and
resume."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, same_weights  # noqa: E402

from disentbench.checkpoint import load_checkpoint  # noqa: E402
from disentbench.models.base import Batch  # noqa: E402
from disentbench.models.blocks import reverse_gradient  # noqa: E402
from disentbench.models.fden import (adaptive_clip, donsker_varadhan, draw_episodes, mlp,  # noqa: E402
                                     prototypical_logits)
from disentbench.training import resolve_spec, setup_run, train  # noqa: E402

#: FDEN's budget on the tiny grid (48 images: 43 train / 5 test; the identity factor is the size, 3 classes)
TINY = {"subset": 0, "batch_size": 16, "shots": 2, "eval_episodes": 50, "mine_eval_steps": 20}


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A finished (short) ae run on the tiny grid: FDEN's frozen upstream."""
    out = tmp_path_factory.mktemp("runs") / "ae"
    spec = resolve_spec("ae", tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                        overrides={"subset": 0, "epochs": 1, "batch_size": 8})
    train(spec, out, dataset=TinySquares(), progress=False)
    return out


def fden_spec(**overrides):
    return resolve_spec("fden", tier="smoke", seed=0, dataset="tiny-squares", threads=1, log_every_steps=1,
                        overrides={**TINY, "epochs": 1, **overrides})


def test_gradient_reversal_gives_the_statistics_network_the_ascent_and_the_factors_the_descent():
    """Through the reversal layer, −γ·L_M gives T the gradient −γ ∂L_M/∂ξ (a descent step raises L_M) and the factors
    +γ ∂L_M/∂f (a descent step lowers L_M); hand-made with γ = 0.5 on a seeded T."""
    torch.manual_seed(0)
    critic = mlp(4, (8,), 1, 0.0, 0.01)
    f = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    plain = donsker_varadhan(critic, f[:, :2], f[:, 2:], perm)
    d_f, *d_xi = torch.autograd.grad(plain, [f, *critic.parameters()])
    h = reverse_gradient(f)
    reversed_loss = -0.5 * donsker_varadhan(critic, h[:, :2], h[:, 2:], perm)
    g_f, *g_xi = torch.autograd.grad(reversed_loss, [f, *critic.parameters()])
    assert torch.allclose(g_f, 0.5 * d_f) and d_f.abs().sum() > 0
    assert all(torch.allclose(g, -0.5 * d) for g, d in zip(g_xi, d_xi))


def test_donsker_varadhan_closed_form():
    """A constant critic c gives c − log e^c = 0; T(a, b) = a·b on paired copies gives mean a² − log mean exp(a_i a_π(i))."""

    class Dot(torch.nn.Module):
        def forward(self, pairs):
            return (pairs[:, :1] * pairs[:, 1:]).sum(1, keepdim=True)

    a = torch.tensor([[1.0], [-1.0], [2.0]])
    perm = torch.tensor([1, 2, 0])
    expected = (1 + 1 + 4) / 3 - math.log((math.exp(-1) + math.exp(-2) + math.exp(2)) / 3)
    assert float(donsker_varadhan(Dot(), a, a, perm)) == pytest.approx(expected)
    const = torch.nn.Linear(2, 1).requires_grad_(False)
    torch.nn.init.zeros_(const.weight), torch.nn.init.constant_(const.bias, 3.0)
    assert float(donsker_varadhan(const, a, a, perm)) == pytest.approx(0.0, abs=1e-6)


def test_adaptive_clipping_rule_on_hand_made_gradients():
    """Eq. 7: g_a = min(‖g_u‖, ‖g_m‖) g_m/‖g_m‖ — over all of θ (global) or per tensor; zero g_m stays zero."""
    g_u = [torch.tensor([0.6, 0.8]), torch.tensor([0.0, 0.0])]  # ‖g_u‖ = 1 (all in the first tensor)
    big = [torch.tensor([0.0, 6.0]), torch.tensor([8.0, 0.0])]  # ‖g_m‖ = 10
    small = [torch.tensor([0.0, 0.3]), torch.tensor([0.4, 0.0])]  # ‖g_m‖ = 0.5
    clipped = adaptive_clip(g_u, big, "global")
    assert torch.allclose(clipped[0], torch.tensor([0.0, 0.6])) and torch.allclose(clipped[1], torch.tensor([0.8, 0.0]))
    assert all(torch.equal(a, b) for a, b in zip(adaptive_clip(g_u, small, "global"), small))
    per_tensor = adaptive_clip(g_u, big, "tensor")  # tensor 1: norm 6 -> 1; tensor 2: ‖g_u‖ = 0 -> 0
    assert torch.allclose(per_tensor[0], torch.tensor([0.0, 1.0])) and torch.equal(per_tensor[1], torch.zeros(2))
    zero = adaptive_clip(g_u, [torch.zeros(2), torch.zeros(2)], "global")
    assert all(torch.equal(z, torch.zeros(2)) for z in zero)
    assert all(torch.equal(a, b) for a, b in zip(adaptive_clip(g_u, big, "none"), big))


def test_episodes_hold_every_class_with_disjoint_support_and_query():
    labels = torch.tensor([0, 1, 2] * 10 + [2, 2])
    gen = torch.Generator().manual_seed(0)
    support, mask, query, target = draw_episodes(labels, 3, 5, 40, gen)
    assert support.shape == mask.shape == (40, 3, 5) and mask.all() and query.shape == target.shape == (40,)
    assert (labels[support] == torch.arange(3)[None, :, None]).all() and (labels[query] == target).all()
    for e in range(40):
        rows = support[e].flatten().tolist() + [int(query[e])]
        assert len(set(rows)) == len(rows)
    assert set(target.tolist()) == {0, 1, 2}
    few = torch.tensor([0, 0, 0, 1, 1, 2])  # class 2 has one row: never a query, one support row
    support, mask, query, target = draw_episodes(few, 3, 5, 30, torch.Generator().manual_seed(1))
    assert (target != 2).all() and (mask[:, 2].sum(1) == 1).all()
    assert (mask.sum(2)[torch.arange(30), target] == torch.tensor([3, 2])[target] - 1).all()
    logits = prototypical_logits(torch.eye(6), support, mask, query)
    assert torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="no identity class has two rows"):
        draw_episodes(torch.tensor([0, 1, 2]), 3, 5, 2, gen)


def test_prototypical_logits_are_negative_squared_distances_to_the_class_means():
    features = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    support = torch.tensor([[[0, 1], [2, 2]]])
    mask = torch.tensor([[[True, True], [True, False]]])
    logits = prototypical_logits(features, support, mask, torch.tensor([3]))
    assert torch.allclose(logits, torch.tensor([[-1.0, -10.0]]))  # prototypes (1, 0) and (0, 4)


def test_a_training_step_applies_the_clipped_reversed_gradient_to_the_disentangler_only(ae_run):
    """The step's gradients equal, for θ, g_u + g_a with g_a the clipped reversed MINE gradient (‖g_a‖ ≤ ‖g_u‖);
    for φ the reconstruction gradient alone; for ξ the ascent on L_M. γ = 1e4 makes the clip bind."""
    run = setup_run(fden_spec(gamma=1e4, dropout=0.0, lr=0.0), dataset=TinySquares(), upstream_path=ae_run)
    model = run.model
    batch = run.data.batch(run.data.train[:16], model.needs, noise=torch.Generator().manual_seed(3))
    model.train_step(batch)
    theta = list(model.disentangler.parameters())
    phi, xi = list(model.entangler.parameters()), list(model.statistics.parameters())
    got = [p.grad.clone() for p in theta + phi + xi]
    gen = torch.Generator().manual_seed(3)
    f_ide, f_sty = model.disentangle(batch.upstream)
    recon = (batch.upstream - model.entangle(f_ide, f_sty)).pow(2).sum(1).mean()
    *episodes, target = draw_episodes(batch.factors[:, model.identity], model.n_classes, 2, 16, gen)
    ce = torch.nn.functional.cross_entropy(prototypical_logits(f_ide, *episodes), target)
    perm = torch.randperm(16, generator=gen)
    mine = donsker_varadhan(model.statistics, f_ide, f_sty, perm)
    g_u = torch.autograd.grad(recon + ce, theta + phi, retain_graph=True)
    d_theta = torch.autograd.grad(1e4 * mine, theta, retain_graph=True)  # γ ∂L_M/∂θ: what the reversal passes
    d_xi = torch.autograd.grad(-1e4 * mine, xi)
    norm = lambda gs: float(torch.sqrt(sum(g.pow(2).sum() for g in gs)))  # noqa: E731
    assert norm(d_theta) > 10 * norm(g_u[:len(theta)])  # the clip binds
    g_a = adaptive_clip(g_u[:len(theta)], d_theta, "global")
    expected = [u + a for u, a in zip(g_u, g_a)] + list(g_u[len(theta):]) + list(d_xi)
    assert all(torch.allclose(g, e, rtol=1e-4, atol=1e-6) for g, e in zip(got, expected))
    assert norm([g - u for g, u in zip(got[:len(theta)], g_u)]) <= norm(g_u[:len(theta)]) * (1 + 1e-4)


def test_the_upstream_stays_bit_identical_and_untrained(ae_run, tmp_path):
    summary = train(fden_spec(epochs=2), tmp_path / "fden", dataset=TinySquares(), upstream_path=ae_run, progress=False)
    ae = load_checkpoint(ae_run / "model.pt")["state_dict"]
    fden = load_checkpoint(tmp_path / "fden" / "model.pt")["state_dict"]
    frozen = {k[len("upstream."):]: v for k, v in fden.items() if k.startswith("upstream.")}
    assert same_weights(frozen, ae)
    run = setup_run(fden_spec(), dataset=TinySquares(), upstream_path=ae_run)
    trained = {id(p) for group in run.model.optimizers["model"].param_groups for p in group["params"]}
    assert not any(id(p) in trained for p in run.model.upstream.parameters())
    assert not run.model.upstream.training and run.model.training
    metrics = summary["metrics"]
    assert set(metrics) == {"episode_accuracy_ide", "episode_accuracy_sty", "episode_chance", "recon_ratio",
                            "mi_ide_sty"}
    assert metrics["episode_chance"] == pytest.approx(1 / 3) and metrics["recon_ratio"] > 0
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("episode_accuracy_ide", "episode_accuracy_sty"))


def synthetic_codes(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(z (n, 8), factors (n, 2)): dims 0-1 place the identity (factor 0, 3 classes) on a circle of radius 2, dims
    2-7 are style noise independent of it; factor 1 is an unrelated label."""
    y = torch.randint(3, (n,), generator=gen)
    angle = 2 * math.pi * y.float() / 3
    centre = 2 * torch.stack([angle.cos(), angle.sin()], 1)
    z = torch.cat([centre + 0.2 * torch.randn(n, 2, generator=gen), torch.randn(n, 6, generator=gen)], 1)
    return z, torch.stack([y, torch.randint(4, (n,), generator=gen)], 1)


def test_a_short_run_lowers_the_losses_and_aligns_f_ide():
    """On codes whose first two dims carry the identity: over 150 steps the reconstruction and the episode
    cross-entropy (from about log 3, chance) fall; the protocol then finds the identity in f_ide (episode accuracy > 2× chance) and z
    reconstructed (ratio < 0.5)."""
    from types import SimpleNamespace

    from disentbench.models import ModelContext, build_model

    config = resolve_spec("fden", tier="smoke", seed=0, dataset="x", overrides={"eval_episodes": 100,
                                                                                "mine_eval_steps": 20})["config"]
    torch.manual_seed(0)
    upstream = build_model("ae", resolve_spec("ae", tier="smoke", seed=0, dataset="x")["config"], ModelContext(1))
    model = build_model("fden", config, ModelContext(1, factor_sizes=(3, 4), upstream=upstream)).train()
    model.optimizers = model.configure_optimizers()
    gen = torch.Generator().manual_seed(1)
    z, factors = synthetic_codes(600, gen)
    logs = []
    for step in range(150):
        rows = torch.randint(540, (64,), generator=gen)
        logs.append(model.train_step(Batch(factors=factors[rows], upstream=z[rows], step=step, noise=gen)))

    def mean(key, part):
        return float(np.mean([float(r[key]) for r in part]))

    assert mean("recon", logs[-10:]) < 0.5 * mean("recon", logs[:10])
    ce = [float(r["episode_ce"]) for r in logs]
    assert ce[0] == pytest.approx(math.log(3), abs=0.1) and np.median(ce[-10:]) < 0.5 * ce[0], ce
    data = SimpleNamespace(upstream=z, factors=factors, train=torch.arange(540), test=torch.arange(540, 600))
    m = model.evaluate(data)
    assert m["recon_ratio"] < 0.5 and m["episode_accuracy_ide"] > 2 * m["episode_chance"], m
    assert model.training and np.isfinite(m["mi_ide_sty"])


def test_the_representation_is_deterministic_in_eval_mode(ae_run):
    model = setup_run(fden_spec(), dataset=TinySquares(), upstream_path=ae_run).model.eval()
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    codes = model.encode(x)
    assert codes.shape == (5, model.code_dim) == (5, 2 * model.upstream.code_dim)
    assert torch.equal(codes, model.encode(x))
    reps = model.representations(x)
    assert torch.equal(reps["ide_sty"], codes)
    assert torch.equal(torch.cat([reps["ide"], reps["sty"]], 1), codes)
    assert torch.equal(codes, model.factors_of(model.upstream.encode(x)))


def test_upstream_runs_that_are_missing_incomplete_foreign_or_of_another_model_are_refused(ae_run, tmp_path):
    """Each refusal names the folder."""

    class OtherSquares(TinySquares):
        name = "other-squares"

    def start(path, dataset=None):
        train(fden_spec(), tmp_path / "out", dataset=dataset or TinySquares(), upstream_path=path, progress=False)

    with pytest.raises(FileNotFoundError, match=f"no checkpoint or run folder at {tmp_path / 'nowhere'}"):
        start(tmp_path / "nowhere")
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(ae_run / "checkpoint.pt", half / "checkpoint.pt")
    with pytest.raises(FileNotFoundError, match=f"{half} is not a finished run"):
        start(half)
    with pytest.raises(ValueError, match=f"upstream run {ae_run} was trained on 'tiny-squares', not 'other-squares'"):
        start(ae_run, OtherSquares())
    teacher = tmp_path / "teacher"
    train(resolve_spec("kf-teacher", tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                       overrides={"subset": 0, "epochs": 1, "batch_size": 24}), teacher, dataset=TinySquares(),
          progress=False)
    with pytest.raises(ValueError, match=f"upstream run {teacher} is a 'kf-teacher' run; this model trains on a "
                                         "ae or vae run"):
        start(teacher)


def test_resume_reaches_the_uninterrupted_run(ae_run, tmp_path):
    """Interrupted after step 3 of 6 and resumed: weights, optimiser state and log equal the uninterrupted run's."""
    spec = fden_spec(epochs=2, checkpoint_every_steps=1)
    train(spec, tmp_path / "full", dataset=TinySquares(), upstream_path=ae_run, progress=False)

    class Stop(Exception):
        pass

    def stop(step, model):
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(spec, tmp_path / "cut", dataset=TinySquares(), upstream_path=ae_run, progress=False, on_step=stop)
    train(spec, tmp_path / "cut", dataset=TinySquares(), upstream_path=ae_run, progress=False, resume=True)
    full, cut = (load_checkpoint(tmp_path / d / "model.pt") for d in ("full", "cut"))
    assert same_weights(full["state_dict"], cut["state_dict"])
    assert full["extra"]["metrics"] == cut["extra"]["metrics"]
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "images_per_s"}  # noqa: E731
                          for line in text.splitlines()]
    assert strip((tmp_path / "full" / "log.jsonl").read_text()) == strip((tmp_path / "cut" / "log.jsonl").read_text())
