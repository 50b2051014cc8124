"""SHADE (seed 001 thesis, 10_shade.tex): Ω and Algorithm A.1 on the two-sample example, the buffers' contract, the
baseline being kf-teacher with one setting changed, and a same-seed ablation against weight 0."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, same_weights, trained_weights  # noqa: E402

from disentbench.models import load_model  # noqa: E402
from disentbench.models.factor_classifier import (ShadeAverages, correct_per_factor, preactivations,  # noqa: E402
                                                  shade_moving_averages, shade_omega, unit_samples,
                                                  within_class_variance_ratio)
from disentbench.training import resolve_spec, setup_run, train  # noqa: E402

H = torch.tensor([[2.0], [-2.0]])  # one unit, a batch of two pre-activations
INITIAL = (torch.tensor([0.5]), torch.tensor([-1.0]), torch.tensor([1.0]))  # p¹, μ⁰, μ¹ (Algorithm A.1)


def test_omega_of_the_two_sample_example():
    """σ(2) = 0.8808: each sample gives 0.8808·(2 − 1)² + 0.1192·(2 + 1)² = 1.9536 (and symmetrically for −2)."""
    _, mu0, mu1 = INITIAL
    assert float(shade_omega(H, mu0, mu1)) == pytest.approx(1.954, abs=5e-4)
    # a conv layer: one channel, the two values at two positions of one image
    assert float(ShadeAverages(1).omega(H.reshape(1, 1, 1, 2))) == pytest.approx(1.954, abs=5e-4)
    # two units: the sum over units
    assert float(shade_omega(torch.cat([H, H], 1), mu0.repeat(2), mu1.repeat(2))) == pytest.approx(2 * 1.9536, 1e-4)


def test_one_moving_average_update_of_the_two_sample_example():
    """p¹ = 0.8·0.5 + 0.2·mean(σ(h)) = 0.5; μ¹ = 0.8 + 0.2·mean(σ(h)·h)/0.5 = 1.1046; μ⁰ = −1.1046."""
    p1, mu0, mu1 = shade_moving_averages(H, *INITIAL, decay=0.8)
    assert float(p1) == pytest.approx(0.5, abs=1e-6)
    assert float(mu1) == pytest.approx(1.1046, abs=1e-4)
    assert float(mu0) == pytest.approx(-1.1046, abs=1e-4)


def test_the_means_use_the_updated_probabilities():
    """Algorithm A.1 updates p^z first, then μ^z divides by the new p^z: h = [3, 3] moves p¹ to 0.8·0.5 + 0.2·σ(3)."""
    h = torch.tensor([[3.0], [3.0]])
    s = 1 / (1 + math.exp(-3.0))
    p1_new = 0.8 * 0.5 + 0.2 * s
    p1, mu0, mu1 = shade_moving_averages(h, *INITIAL, decay=0.8)
    assert float(p1) == pytest.approx(p1_new)
    assert float(mu1) == pytest.approx(0.8 * 1.0 + 0.2 * s * 3.0 / p1_new, rel=1e-6)
    assert float(mu0) == pytest.approx(0.8 * -1.0 + 0.2 * (1 - s) * 3.0 / (1 - p1_new), rel=1e-6)
    assert float(mu1) != pytest.approx(0.8 + 0.2 * s * 3.0 / 0.5, rel=1e-3)  # not the old p¹


def test_buffers_are_checkpointed_take_no_gradient_and_follow_the_batch_after_the_step():
    """The averages are buffers of every layer (six convolutions and the latent), in the state_dict and not among
    the parameters; Ω's gradient never reaches them; after a step they hold Algorithm A.1's update computed from
    that batch's pre-activations before the step."""
    spec = resolve_spec("shade", tier="smoke", seed=0, dataset="tiny-squares", threads=1, overrides={"subset": 0})
    run = setup_run(spec, dataset=TinySquares())
    model = run.model
    units = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("shade.")}
    assert units == {f"shade.{i}.{b}": (n,) for i, n in enumerate((32, 32, 64, 128, 256, 256, 10))
                     for b in ("p1", "mu0", "mu1")}
    assert not any(name.startswith("shade.") for name, _ in model.named_parameters())
    batch = run.data.batch(run.data.train[:8], model.needs, noise=run.noise)
    with torch.no_grad():
        _, hs = preactivations(model.encoder, batch.images)
    expected = [shade_moving_averages(unit_samples(h), avg.p1, avg.mu0, avg.mu1, 0.8)
                for avg, h in zip(model.shade, hs)]
    logged = model.train_step(batch)
    assert float(logged["loss"]) == pytest.approx(float(logged["cross_entropy"] + 1e-3 * logged["shade"]), rel=1e-6)
    for avg, (p1, mu0, mu1) in zip(model.shade, expected):
        assert avg.p1.grad is None and avg.mu0.grad is None and not avg.mu1.requires_grad
        assert torch.allclose(avg.p1, p1) and torch.allclose(avg.mu0, mu0) and torch.allclose(avg.mu1, mu1)
    assert not torch.allclose(model.shade[0].mu1, torch.ones(32))


def test_the_baseline_is_kf_teacher_with_one_setting_changed(tmp_path):
    """shade.toml and kf-teacher.toml resolve to the same run in both tiers except ``shade_weight``; at weight 0 the
    two are the same model bit for bit (the averages are tracked but never feed back)."""
    for tier in ("smoke", "paper"):
        shade, teacher = (resolve_spec(m, tier=tier, seed=0, dataset="x") for m in ("shade", "kf-teacher"))
        differ = {k for k in shade["config"] if shade["config"][k] != teacher["config"][k]}
        assert differ == {"shade_weight"} and teacher["config"]["shade_weight"] == 0.0
        assert {k: v for k, v in shade.items() if k not in ("model", "source", "config")} == \
               {k: v for k, v in teacher.items() if k not in ("model", "source", "config")}
    data = TinySquares()
    assert same_weights(trained_weights("shade", data, tmp_path / "s0", shade_weight=0.0),
                        trained_weights("kf-teacher", data, tmp_path / "t"))


def ablation_run(name: str, out, weight: float) -> dict:
    """A seeded 20-epoch run on the tiny grid: Ω logged per step, and the latent's within-class / total variance
    ratio and accuracy over the whole grid."""
    data = TinySquares()
    spec = resolve_spec(name, tier="smoke", seed=1, dataset=data.name, threads=1, log_every_steps=1,
                        overrides={"subset": 0, "epochs": 20, "batch_size": 8, "lr_milestones": [],
                                   "shade_weight": weight})
    train(spec, out, dataset=data, progress=False)
    omega = [json.loads(line)["shade"] for line in (out / "log.jsonl").read_text().splitlines() if '"shade"' in line]
    model, _ = load_model(out)
    index = torch.arange(len(data))
    images = torch.from_numpy(data.images(index.numpy())).permute(0, 3, 1, 2).float() / 255
    factors = torch.from_numpy(data.factor_space.index_to_classes(index.numpy()))
    with torch.no_grad():
        codes = model.encode(images)
        accuracy = correct_per_factor(model.logits(codes), factors) / len(factors)
    return {"first": sum(omega[:5]) / 5, "last": sum(omega[-5:]) / 5, "accuracy": float(accuracy.mean()),
            "ratio": within_class_variance_ratio(codes, factors)}


def test_same_seed_ablation_against_weight_zero(tmp_path):
    """Spec check: with weight w (here 1e-2, the top of the thesis' sweep) Ω falls during training and ends lower than
    in the same-seed weight-0 run (where it grows with the activations), the latent's within-class / total variance
    ratio is lower, and accuracy stays within a few points."""
    shade = ablation_run("shade", tmp_path / "shade", 1e-2)
    baseline = ablation_run("kf-teacher", tmp_path / "baseline", 0.0)
    assert shade["last"] < 0.5 * shade["first"]
    assert shade["last"] < 0.5 * baseline["last"]
    assert shade["ratio"] < baseline["ratio"]
    assert abs(shade["accuracy"] - baseline["accuracy"]) < 0.1
