"""AnnealedVAE (Burgess et al. 2018): the capacity schedule, the |KL − C| objective, and C = 0, γ = 1 as the VAE."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, build, same_weights, trained_weights  # noqa: E402

from disentbench.models import Batch  # noqa: E402
from disentbench.models.vae import annealed_capacity, gaussian_kl  # noqa: E402


def test_capacity_rises_linearly_then_stays_at_c_max():
    assert annealed_capacity(0, 25.0, 100) == 0.0
    assert annealed_capacity(50, 25.0, 100) == 12.5
    assert annealed_capacity(100, 25.0, 100) == 25.0
    assert annealed_capacity(10_000, 25.0, 100) == 25.0


def test_regulariser_is_gamma_times_the_distance_of_kl_to_capacity():
    model = build("annealed-vae", gamma=3.0, c_max=10.0, iteration_threshold=4)
    mean, logvar = torch.full((2, 8), 1.0), torch.zeros(2, 8)
    kl = gaussian_kl(mean, logvar)  # ½ · 8 · 1 = 4 nats
    assert float(kl) == 4.0
    for step, capacity in ((0, 0.0), (2, 5.0), (9, 10.0)):
        (term,), logged = model.regulariser(mean, mean, logvar, kl, Batch(step=step))
        assert float(term) == pytest.approx(3.0 * abs(4.0 - capacity))
        assert float(logged["capacity"]) == capacity


def test_zero_capacity_and_unit_gamma_is_the_vae_bit_for_bit(tmp_path):
    data = TinySquares()
    annealed = trained_weights("annealed-vae", data, tmp_path / "a", gamma=1.0, c_max=0.0)
    vae = trained_weights("vae", data, tmp_path / "vae", beta=1.0)
    assert same_weights(annealed, vae)
    assert not same_weights(trained_weights("annealed-vae", data, tmp_path / "a25", iteration_threshold=2), vae)
