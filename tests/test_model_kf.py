"""Knowledge factorisation (seed 000): the KL and DV closed forms, the frozen teacher, falling losses and rising
InfoMax on a short run, the representations, the switches, and a refused upstream."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares  # noqa: E402

from disentbench.checkpoint import load_checkpoint  # noqa: E402
from disentbench.models import ModelContext, build_model  # noqa: E402
from disentbench.models.factor_classifier import correct_per_factor  # noqa: E402
from disentbench.models.kf import batch_moment_kl, dv_bound  # noqa: E402
from disentbench.models.vae import gaussian_kl  # noqa: E402
from disentbench.training import resolve_spec, setup_run, train  # noqa: E402

CHANCE = torch.tensor([1 / 4, 1 / 4, 1 / 3], dtype=torch.float64)  # TinySquares: x, y, size
TINY = {"subset": 0, "batch_size": 8, "lr_milestones": []}


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A kf-teacher trained for 20 epochs on the tiny grid (it then knows every factor, see test_model_kf_teacher)."""
    out = tmp_path_factory.mktemp("runs") / "teacher"
    spec = resolve_spec("kf-teacher", tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                        overrides={**TINY, "epochs": 20})
    train(spec, out, dataset=TinySquares(), progress=False)
    return out


def kf_run(teacher_run, **overrides):
    spec = resolve_spec("kf", tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                        overrides={**TINY, "epochs": 1, **overrides})
    return setup_run(spec, dataset=TinySquares(), upstream_path=teacher_run)


def test_kl_closed_form():
    """KL(N(μ, σ²) || N(0, I)) = 0 at μ = 0, log σ² = 0 and ½·d at μ = 1, log σ² = 0; the batch-moment form is 0 on
    a standardised batch."""
    zeros = torch.zeros(6, 10)
    assert float(gaussian_kl(zeros, zeros)) == 0.0
    assert float(gaussian_kl(torch.ones(6, 10), zeros)) == pytest.approx(5.0)
    t = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    t = (t - t.mean(0)) / t.std(0, unbiased=False)
    assert float(batch_moment_kl(t)) == pytest.approx(0.0, abs=1e-5)
    assert float(batch_moment_kl(t + 1.0)) == pytest.approx(5.0, abs=1e-5)


def test_dv_bound_on_identical_and_permuted_vectors():
    """On 256 random 10-d vectors the cosine-critic bound is high for a paired copy and about 0 for a shuffled one;
    on orthonormal vectors it is exactly 1 (joint term 1, every marginal score 0), and the authors' estimator 1/B."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(256, 10, generator=gen)
    shuffled = a[torch.randperm(256, generator=gen)]
    assert float(dv_bound(a, a)) > 0.8
    assert float(dv_bound(a, shuffled)) < 0.1
    basis = torch.eye(4)
    assert float(dv_bound(basis, 3.0 * basis)) == pytest.approx(1.0)
    assert float(dv_bound(basis, basis, "code_faithful")) == pytest.approx(0.25)


def test_the_teacher_stays_bit_identical_and_knows_the_factors(teacher_run, tmp_path):
    """The teacher's weights in the KF checkpoint equal the teacher run's; none is in the optimiser; the teacher
    predicts every factor above chance on the test split when KF starts (its logits guide the distillation)."""
    spec = resolve_spec("kf", tier="smoke", seed=0, dataset="tiny-squares", threads=1, overrides={**TINY, "epochs": 2})
    summary = train(spec, tmp_path / "kf", dataset=TinySquares(), upstream_path=teacher_run, progress=False)
    teacher = load_checkpoint(teacher_run / "model.pt")["state_dict"]
    kf = load_checkpoint(tmp_path / "kf" / "model.pt")["state_dict"]
    frozen = {k[len("upstream."):]: v for k, v in kf.items() if k.startswith("upstream.")}
    assert frozen.keys() == teacher.keys() and all(torch.equal(frozen[k], teacher[k]) for k in teacher)
    assert (torch.tensor(summary["metrics"]["teacher_accuracy_per_factor"], dtype=torch.float64) > 1.5 * CHANCE).all()
    run = kf_run(teacher_run)
    trained = {id(p) for group in run.model.optimizers["model"].param_groups for p in group["params"]}
    assert not any(id(p) in trained for p in run.model.upstream.parameters())


def factor_cross_entropies(model, data) -> torch.Tensor:
    """CE_j of H_j(z + μ_j) (deterministic means) on every image of the tiny grid, (J,)."""
    model.eval()
    with torch.no_grad():
        z, means = model.means(data.float_images(torch.arange(len(data.images))))
        logits = model.heads([z + m for m in means])
    model.train()
    return torch.stack([torch.nn.functional.cross_entropy(lg, data.factors[:, j]) for j, lg in enumerate(logits)])


def test_a_short_run_lowers_every_cross_entropy_and_raises_the_infomax(teacher_run):
    """Spec check: each CE_j falls and Î rises; the heads then predict every factor above 1.5× chance. On the tiny
    grid the teacher's logits are large (|logit| ≈ 13) and the distillation MSE dominates the first ~150 steps, during
    which the CEs rise; 250 steps get past it."""
    run = kf_run(teacher_run)
    model, data = run.model, run.data
    before = factor_cross_entropies(model, data)
    infomax = []
    for epoch in range(50):
        for start in range(0, 40, 8):
            batch = data.batch(data.train[start:start + 8], model.needs, noise=run.noise)
            infomax.append(float(model.train_step(batch)["infomax"]))
    after = factor_cross_entropies(model, data)
    assert (after < before).all(), (before, after)
    assert sum(infomax[-5:]) > sum(infomax[:5]), infomax
    model.eval()
    with torch.no_grad():
        z, means = model.means(data.float_images(torch.arange(len(data.images))))
        accuracy = correct_per_factor(model.heads([z + m for m in means]), data.factors) / len(data.images)
    assert (accuracy > 1.5 * CHANCE).all(), accuracy


def test_representations_are_the_means_and_their_sums(teacher_run):
    model = kf_run(teacher_run).model.eval()
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    reps = model.representations(x)
    assert sorted(reps) == ["ckn", "ckn_plus_tsn_0", "ckn_plus_tsn_1", "ckn_plus_tsn_2", "tsn_means"]
    assert reps["tsn_means"].shape == (5, model.code_dim) == (5, 30)
    assert torch.equal(model.encode(x), reps["tsn_means"]) and torch.equal(model.encode(x), model.encode(x))
    for j in range(3):
        mean_j = reps["tsn_means"][:, 10 * j:10 * (j + 1)]
        assert torch.allclose(reps[f"ckn_plus_tsn_{j}"], reps["ckn"] + mean_j)


@pytest.mark.parametrize("switch", [{"tsn_stats": "batch"}, {"student_layers": 6},
                                    {"infomax_estimator": "code_faithful"}])
def test_each_switch_trains(teacher_run, switch):
    run = kf_run(teacher_run, **switch)
    batch = run.data.batch(run.data.train[:8], run.model.needs, noise=run.noise)
    losses = run.model.train_step(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    assert run.model.encode(batch.images).shape == (8, 30)


def test_an_upstream_that_is_not_a_factor_classifier_is_refused():
    base = resolve_spec("multi-head", tier="smoke", seed=0, dataset="x")["config"]
    encoder = build_model("multi-head", base, ModelContext(1, n_tasks=2))
    config = resolve_spec("kf", tier="smoke", seed=0, dataset="x")["config"]
    with pytest.raises(ValueError, match="trains on a kf-teacher or shade run"):
        build_model("kf", config, ModelContext(1, factor_sizes=(4, 4, 3), upstream=encoder))


def test_evaluate_scores_a_named_representation_and_records_it(teacher_run, tmp_path):
    """``evaluate --representation ckn`` scores z instead of the TSN means, under its own record id and cache key."""
    from disentbench import evaluation as ev
    from disentbench.checkpoint import save_model
    from disentbench.models import load_encoder

    path = save_model(tmp_path / "kf.pt", kf_run(teacher_run).model.eval())
    fn, info = load_encoder(path, representation="ckn")
    x = torch.rand(3, 1, 64, 64)
    assert fn(x).shape == (3, 10) and info["representation"] == "ckn"
    with pytest.raises(ValueError, match="no representation 'z'; it has tsn_means, ckn"):
        load_encoder(path, representation="z")
    records = {rep: ev.evaluate(path, "tiny-squares", dataset=TinySquares(), metrics="mig", n_points=None,
                                progress=False, representation=rep, cache_root=tmp_path / "cache")
               for rep in (None, "ckn")}
    assert records["ckn"]["model_source"]["representation"] == "ckn" and records["ckn"]["code_dim"] == 10
    assert records[None]["model_source"]["representation"].startswith("concatenated TSN means") and records[None]["code_dim"] == 30
    assert records["ckn"]["record_id"] != records[None]["record_id"]
