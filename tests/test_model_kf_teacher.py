"""kf-teacher (seed 000's teacher; SHADE's weight-0 baseline): the step schedule, the within-class variance ratio on
known codes, and a short run that learns every factor of the tiny dataset."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares  # noqa: E402

from disentbench.models.factor_classifier import (StepSchedule, correct_per_factor, scheduled_adam,  # noqa: E402
                                                  set_step_lr, within_class_variance_ratio)
from disentbench.training import resolve_spec, setup_run  # noqa: E402


def test_the_step_schedule_divides_the_rate_at_each_milestone():
    """Seed 000 supp. sec. 3.4: lr 1e-4, ×0.1 at epochs 10 and 15 (zero-based epoch e runs after e epochs)."""
    schedule = StepSchedule(lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4, lr_milestones=(10, 15), lr_gamma=0.1)
    opt = scheduled_adam([torch.nn.Parameter(torch.zeros(1))], schedule)
    rates = []
    for epoch in (0, 9, 10, 14, 15, 19):
        set_step_lr(opt, schedule, epoch)
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6])
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match="lr_milestones"):
        StepSchedule(lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0, lr_milestones=(15, 10), lr_gamma=0.1)


def test_within_class_variance_ratio_of_known_codes():
    classes = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    # the code is factor 0's class: no variance within factor 0's classes (ratio 0), all of it within factor 1's (1)
    codes = classes[:, :1].double() * 3.0
    assert within_class_variance_ratio(codes, classes) == pytest.approx(0.5)
    assert within_class_variance_ratio(classes.double(), classes) == pytest.approx(0.5)
    assert within_class_variance_ratio(codes, classes[:, :1]) == pytest.approx(0.0)


def train_accuracy(run) -> torch.Tensor:
    """Accuracy per factor of the model's heads on the whole tiny grid (train and test)."""
    model, data = run.model, run.data
    model.eval()
    with torch.no_grad():
        everything = torch.arange(len(data.images))
        logits = model.logits(model.encode(data.float_images(everything)))
    model.train()
    return correct_per_factor(logits, data.factors) / len(data.images)


def test_a_short_run_learns_every_factor():
    """The summed cross-entropy falls and every factor is predicted at more than 1.5× chance."""
    spec = resolve_spec("kf-teacher", tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                        overrides={"subset": 0, "lr_milestones": []})
    run = setup_run(spec, dataset=TinySquares())
    chance = torch.tensor([1 / 4, 1 / 4, 1 / 3], dtype=torch.float64)
    assert (train_accuracy(run) < 1.5 * chance).any()  # an untrained network does not know every factor
    losses = []
    for epoch in range(20):
        run.model.on_epoch(epoch)
        for start in range(0, 40, 8):
            batch = run.data.batch(run.data.train[start:start + 8], run.model.needs, noise=run.noise)
            losses.append(float(run.model.train_step(batch)["cross_entropy"]))
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5]), losses
    assert (train_accuracy(run) > 1.5 * chance).all()
    assert run.model.encode(torch.rand(3, 1, 64, 64)).shape == (3, run.model.code_dim) == (3, 10)
