"""HybridNet (seed 001, thesis ch. 3): branch balancing routes the gradient to the worse branch only, intermediate and
Mean Teacher targets carry no gradient, the teacher is an EMA held in buffers, the labelled rows depend on the label
seed and not on the training seed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares  # noqa: E402

from disentbench.models.hybridnet import (  # noqa: E402
    HybridNet,
    balanced_reconstruction,
    labelled_positions,
    rampup,
    softmax_mse,
)
from disentbench.training import resolve_spec, setup_run  # noqa: E402


def run_for(seed: int = 0, **config):
    spec = resolve_spec("hybridnet", tier="smoke", seed=seed, dataset="tiny-squares", threads=1,
                        overrides={"subset": 0, "epochs": 1, "batch_size": 8, "checkpoint_every_steps": 100,
                                   "labelled_fraction": 0.2, **config})
    return setup_run(spec, dataset=TinySquares())


def test_balancing_gradient_reaches_only_the_worse_branch():
    """Sample 0: branch c reconstructs worse (e_c > e_u), so only x̂_c gets its gradient; sample 1: the reverse."""
    x = torch.zeros(2, 1, 4, 4)
    x_c = torch.tensor([1.0, 0.1]).view(2, 1, 1, 1).expand(2, 1, 4, 4).clone().requires_grad_(True)
    x_u = torch.tensor([0.2, 0.9]).view(2, 1, 1, 1).expand(2, 1, 4, 4).clone().requires_grad_(True)
    loss, share_c = balanced_reconstruction(x, x_c, x_u)
    loss.backward()
    assert float(share_c) == 0.5
    assert x_c.grad[0].abs().sum() > 0 and x_c.grad[1].abs().sum() == 0
    assert x_u.grad[0].abs().sum() == 0 and x_u.grad[1].abs().sum() > 0
    # the routed sample's loss is the full reconstruction x̂_c + x̂_u: ((1 + 0.2)² + (0.1 + 0.9)²) / 2
    assert float(loss.detach()) == pytest.approx((1.2**2 + 1.0**2) / 2)


def test_intermediate_and_teacher_targets_carry_no_gradient():
    acts = [torch.rand(2, c, s, s, requires_grad=True) for c, s in ((32, 32), (32, 16), (64, 8), (128, 4))]
    inter = [torch.rand(2, c, s, s, requires_grad=True) for c, s in ((64, 8), (32, 16), (32, 32))]
    out = {"acts_c": acts, "acts_u": acts, "inter_c": inter, "inter_u": inter}
    HybridNet.intermediate_loss(out).backward()
    assert all(a.grad is None for a in acts)
    assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in inter)
    student, teacher = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    softmax_mse(student, teacher).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_teacher_is_an_exponential_average_held_in_buffers():
    """No teacher weight is a parameter; after update t the teacher is α·old + (1 − α)·new, α = min(1 − 1/(t+1), 0.97)
    (t = 1 here: α = 0.5); the student's loss gets no gradient from the teacher."""
    run = run_for()
    model = run.model
    assert not any(name.startswith("teacher") for name, _ in model.named_parameters())
    assert any(name.startswith("teacher.") for name in model.state_dict())
    old = {k: v.clone() for k, v in model.teacher.weights().items()}
    model.train_step(run.data.batch(run.data.train[:8], model.needs, noise=run.noise, step=0, epoch=0))
    new = dict(model.discriminative.named_parameters())
    for name, avg in model.teacher.weights().items():
        assert torch.allclose(avg, 0.5 * old[name] + 0.5 * new[name].detach(), atol=1e-7)
        assert not avg.requires_grad


def test_labelled_rows_depend_on_the_label_seed_not_the_training_seed():
    assert torch.equal(run_for(seed=0).model.labelled, run_for(seed=5).model.labelled)
    assert not torch.equal(run_for(label_seed=0).model.labelled, run_for(label_seed=1).model.labelled)
    grid, train = np.arange(0, 2000, 2), np.arange(1000)
    chosen = labelled_positions(grid, train, 0.01, 0)
    assert len(chosen) == 10 and np.all(np.diff(chosen) > 0)
    assert len(labelled_positions(grid, train, 1e-6, 0)) == 1


def test_stability_rampup():
    assert rampup(0, 5) == pytest.approx(np.exp(-5)) and rampup(5, 5) == 1.0 and rampup(9, 5) == 1.0
    assert rampup(0, 0) == 1.0
    assert rampup(1, 5) < rampup(2, 5) < rampup(4, 5)


def test_scored_representation_is_both_pooled_codes():
    model = run_for().model.eval()
    x = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        h_c, h_u = model.discriminative.encoder(x)[-1], model.unsupervised(x)[-1]
        assert torch.equal(model.encode(x), torch.cat([h_c.mean(dim=(2, 3)), h_u.mean(dim=(2, 3))], dim=1))


def test_encoders_use_the_configured_leaky_slope():
    """slope 0.1 (the TOML's): every encoder layer is LeakyReLU(0.1), so a unit below zero still passes gradient and
    pooled codes can be negative; slope 0 is the plain ReLU of checkpoints made before the key existed."""
    leaky, plain = run_for().model, run_for(negative_slope=0.0).model
    for encoder in (leaky.discriminative.encoder, leaky.unsupervised):
        assert all(isinstance(layer[1], torch.nn.LeakyReLU) and layer[1].negative_slope == 0.1
                   for layer in encoder.layers)
    assert all(isinstance(layer[1], torch.nn.ReLU) for layer in plain.unsupervised.layers)
    x = torch.rand(16, 1, 64, 64)
    with torch.no_grad():
        assert (leaky.encode(x) < 0).any() and (plain.encode(x) >= 0).all()
    pre = torch.tensor([-2.0, 3.0], requires_grad=True)
    leaky.unsupervised.layers[0][1](pre).sum().backward()
    assert pre.grad.tolist() == pytest.approx([0.1, 1.0])


def test_negative_slope_defaults_to_relu_and_is_checked():
    from disentbench.models.config import ConfigError, parse_config
    from disentbench.models.hybridnet import HybridNetConfig

    keys = {"y_factor": -1, "labelled_fraction": 0.01, "label_seed": 0, "labelled_batch": 8, "lambda_class": 1.0,
            "lambda_rec": 1.0, "lambda_inter": 1.0, "lambda_stability": 100.0, "stability_rampup_epochs": 1,
            "ema_decay": 0.97, "lr": 3e-3, "betas": [0.9, 0.999]}
    assert parse_config(HybridNetConfig, keys, "old checkpoint").negative_slope == 0.0
    with pytest.raises((ValueError, ConfigError), match="negative_slope"):
        parse_config(HybridNetConfig, {**keys, "negative_slope": 1.5}, "bad")
