"""DualDis (seed 001, thesis ch. 4): the two optimiser steps touch disjoint parameters, the adversarial gradient has
the sign that defeats the adversaries, labels from factor classes, image editing moves h_z only; slow: a same-seed
λ_adv = 0 ablation leaves y readable from h_z, and editing changes the targeted factor most."""

from __future__ import annotations

import copy
import dataclasses

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from disentbench.models import ModelContext, build_model  # noqa: E402
from disentbench.models.base import Batch  # noqa: E402
from disentbench.models.dualdis import (  # noqa: E402
    attribute_blocks,
    attribute_index,
    block_bce,
    edit_attribute,
    inverted_bits,
    label_factor,
)
from disentbench.training import resolve_spec  # noqa: E402

SIZES = (3, 4, 5)  # y = factor 0 (fewest classes); attributes: factors 1 and 2


def dualdis(seed: int = 0, **config):
    base = resolve_spec("dualdis", tier="smoke", seed=0, dataset="x")["config"]
    torch.manual_seed(seed)
    model = build_model("dualdis", {**base, **config}, ModelContext(1, None, SIZES))
    model.optimizers = model.configure_optimizers()
    return model


def batch(n: int = 8, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    factors = torch.stack([torch.randint(0, s, (n,), generator=gen) for s in SIZES], dim=1)
    return Batch(images=torch.rand(n, 1, 64, 64, generator=gen), factors=factors)


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_label_factor_is_shape_on_both_procedural_datasets():
    assert label_factor((3, 6, 40, 32, 32), -1) == 0          # dsprites-procedural: shape
    assert label_factor((10, 10, 10, 8, 4, 15), -1) == 4      # shapes3d-procedural: shape
    assert label_factor(SIZES, 2) == 2
    with pytest.raises(ValueError, match="out of range"):
        label_factor(SIZES, 3)
    assert attribute_blocks(SIZES, 0) == [(1, 0, 4), (2, 4, 5)]


def test_inverted_attributes_flip_binary_blocks_and_spread_over_the_other_classes():
    """z̄ = (1 − z)/(n − 1) per block: 1 − z for a binary attribute (the thesis's flip), and for a categorical one
    zero on the true class and 1/(n − 1) on each other class, so each block's target sums to 1."""
    factors = torch.tensor([[0, 1, 3], [2, 0, 0]])
    blocks = [(1, 0, 2), (2, 2, 5)]
    z = torch.cat([F.one_hot(factors[:, 1], 2), F.one_hot(factors[:, 2], 5)], dim=1).float()
    bar = inverted_bits(z, blocks)
    assert torch.equal(bar[:, :2], 1.0 - z[:, :2])
    assert torch.allclose(bar[0, 2:], torch.tensor([0.25, 0.25, 0.25, 0.0, 0.25]))
    assert torch.allclose(bar[:, 2:].sum(dim=1), torch.ones(2))


def test_each_optimiser_step_changes_only_its_own_parameters():
    """Within one train_step, the L_main step changes every θ_main parameter and leaves C_y, C_z bit-identical; the
    L_disc step changes every adversary parameter and nothing else."""
    model = dualdis()
    changed, plain_update = {}, model.update

    def spy(name, loss):
        before = snapshot(model)
        plain_update(name, loss)
        after = snapshot(model)
        changed[name] = {k for k in before if not torch.equal(before[k], after[k])}

    model.update = spy
    model.train_step(batch())
    adversaries = {k for k, _ in model.named_parameters() if k.startswith("adversaries.")}
    main = {k for k, _ in model.named_parameters()} - adversaries
    assert changed["main"] == main
    assert changed["adversaries"] == adversaries


def test_adversarial_terms_push_the_codes_against_the_adversaries():
    """The λ_adv part of ∂L_main/∂h_z is −λ_adv ∂CE(y, C_y(h_z))/∂h_z (gradient ascent on the adversary's loss), and
    a descent step on L_main raises C_y's cross-entropy and lowers C_z's fit to the inverted attributes z̄."""
    model, b = dualdis(), batch()
    y, z = model.targets(b.factors)
    h_y, h_z = (h.detach().requires_grad_(True) for h in model.branches(b.images))

    def grads(m):
        loss, _ = m.main_loss(b.images, h_y, h_z, y, z)
        return torch.autograd.grad(loss, (h_y, h_z))

    with_adv = grads(model)
    model.config = dataclasses.replace(model.config, lambda_adv=0.0)
    without = grads(model)
    adv_gy, adv_gz = (a - b_ for a, b_ in zip(with_adv, without))
    ce = F.cross_entropy(model.adversaries["c_y"](h_z), y)
    (ce_grad,) = torch.autograd.grad(ce, h_z)
    assert torch.allclose(adv_gz, -0.25 * ce_grad, atol=1e-6)
    with torch.no_grad():
        step = 1e-2
        assert F.cross_entropy(model.adversaries["c_y"](h_z - step * adv_gz), y) > ce
        def inverse_fit(codes):
            return block_bce(model.adversaries["c_z"](codes), inverted_bits(z, model.blocks), len(model.blocks))

        moved, inverse = inverse_fit(h_y - step * adv_gy), inverse_fit(h_y)
        assert moved < inverse


def test_confusion_objective_is_minimal_at_uniform_predictions_and_its_step_moves_c_toward_them():
    """``adversarial_objective = "confusion"``: adv_y = CE(u, C_y(h_z)) ≥ log n_y with equality iff C_y predicts the
    uniform distribution, adv_z = block BCE against 1/n; a descent step on L_main through h_z lowers adv_y (C_y's
    prediction becomes less certain), unlike the flip objective's permuted-label optimum."""
    model, b = dualdis(adversarial_objective="confusion"), batch()
    y, z = model.targets(b.factors)
    h_y, h_z = (h.detach().requires_grad_(True) for h in model.branches(b.images))
    terms = model.adversarial_terms(h_y, h_z, y, z)
    assert float(terms["adv_y"]) > torch.log(torch.tensor(3.0)).item()
    blind = copy.deepcopy(model)  # an adversary whose last layer outputs zeros predicts the uniform distribution
    with torch.no_grad():
        last = [m for m in blind.adversaries["c_y"].modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.zero_()
        last.bias.zero_()
        assert torch.isclose(blind.adversarial_terms(h_y, h_z, y, z)["adv_y"], torch.log(torch.tensor(3.0)))
    def grad_z(m):
        loss, _ = m.main_loss(b.images, h_y, h_z, y, z)
        return torch.autograd.grad(loss, h_z)[0]

    with_adv = grad_z(model)
    model.config = dataclasses.replace(model.config, lambda_adv=0.0)
    adv_g = with_adv - grad_z(model)
    (own,) = torch.autograd.grad(terms["adv_y"], h_z, retain_graph=True)
    assert torch.allclose(adv_g, 0.25 * own, atol=1e-6)  # + λ_adv · CE(u, C_y): L_main descends on it
    with torch.no_grad():  # a unit-length step: adv_y sits near its minimum log 3, where the raw gradient is tiny
        step = 1e-1 * adv_g / adv_g.norm()
        assert model.adversarial_terms(h_y, h_z - step, y, z)["adv_y"] < terms["adv_y"]
        assert model.adversarial_terms(h_y, h_z + step, y, z)["adv_y"] > terms["adv_y"]
    with pytest.raises(ValueError, match="adversarial_objective"):
        dualdis(adversarial_objective="reverse")


def test_edit_moves_only_h_z_along_the_attribute_row():
    """ε = 0 gives the reconstruction; otherwise the decoder sees (h_y, h_z + ε w_i), w_i the W_z row of the edited
    class (thesis sec. 4.7)."""
    model, b = dualdis(), batch(4)
    model.eval()
    seen = []
    plain_decode = model.decode
    model.decode = lambda h_y, h_z: seen.append((h_y, h_z)) or plain_decode(h_y, h_z)
    with torch.no_grad():
        h_y, h_z = model.branches(b.images)
        assert torch.equal(edit_attribute(model, b.images, 2, 3, 0.0), plain_decode(h_y, h_z).clamp(0, 1))
        edit_attribute(model, b.images, 2, 3, 1.5)
    row = model.w_z.weight[attribute_index(model, 2, 3)]
    assert attribute_index(model, 2, 3) == 4 + 3
    assert torch.equal(seen[-1][0], h_y)
    assert torch.allclose(seen[-1][1] - h_z, 1.5 * row.expand_as(h_z), atol=1e-6)
    with pytest.raises(ValueError, match="not an attribute"):
        attribute_index(model, 0, 1)


# -- slow: trained runs on a dsprites-procedural subset ---------------------------------------------------------------
SLOW_BUDGET = {"subset": 3000, "epochs": 3, "batch_size": 32, "checkpoint_every_steps": 1000}


@pytest.fixture(scope="module")
def ablation_runs(tmp_path_factory):
    """Same-seed runs with the reference λ_adv and with λ_adv = 0 (dsprites-procedural, 2700 training images)."""
    from disentbench.training import train

    runs = {}
    for name, adv in (("adversarial", 0.25), ("ablation", 0.0)):
        out = tmp_path_factory.mktemp("dualdis") / name
        spec = resolve_spec("dualdis", tier="smoke", seed=0, dataset="dsprites-procedural", threads=2,
                            overrides={**SLOW_BUDGET, "lambda_adv": adv})
        runs[name] = (train(spec, out, progress=False)["metrics"], out)
    return runs


@pytest.mark.slow
def test_without_adversaries_a_fresh_probe_reads_y_from_h_z_better(ablation_runs):
    """Spec check (seed-models sec. 4): against the same-seed λ_adv = 0 ablation, the probe h_z → shape is lower by
    ≥ 0.1 and within chance + 0.15 with the adversaries on; shape stays readable from h_y."""
    adv, ablation = ablation_runs["adversarial"][0], ablation_runs["ablation"][0]
    assert ablation["probe_y_from_hz"] >= adv["probe_y_from_hz"] + 0.1
    assert adv["probe_y_from_hz"] <= 1 / 3 + 0.15
    assert adv["probe_y_from_hy"] >= 0.9


@pytest.mark.slow
def test_editing_changes_the_targeted_factor_most(ablation_runs):
    """Moving h_z along the W_z row of posX = c and re-encoding changes the model's posX prediction more often than
    its prediction of any other attribute factor."""
    from disentbench.data import get_dataset
    from disentbench.models import load_model

    model, _ = load_model(ablation_runs["adversarial"][1])
    model.eval()
    data = get_dataset("dsprites-procedural")
    images = torch.from_numpy(data.images(list(range(0, 737280, 7373)))).permute(0, 3, 1, 2).float()
    images = images / getattr(data, "pixel_max", 255)
    with torch.no_grad():
        before = model.w_z(model.branches(images)[1])
        edited = edit_attribute(model, images, 3, 31, 3.0)
        after = model.w_z(model.branches(edited)[1])
    changes = {f: float((before[:, s:s + n].argmax(1) != after[:, s:s + n].argmax(1)).float().mean())
               for f, s, n in model.blocks}
    assert changes[3] > max(v for f, v in changes.items() if f != 3)
