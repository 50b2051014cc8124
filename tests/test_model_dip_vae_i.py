"""DIP-VAE-I (Kumar et al. 2018, eq. 6): the covariance penalty on a known covariance, and λ = 0 reducing to the VAE."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, same_weights, trained_weights  # noqa: E402

from disentbench.models.vae import dip_penalty  # noqa: E402


def means_with_covariance():
    """Four posterior means whose biased covariance is exactly [[2, 0.5], [0.5, 1]]."""
    # columns: u = (±√2, ±√2) pattern; v built so that Cov(u, v) = 0.5 and Var(v) = 1
    u = torch.tensor([1.0, 1.0, -1.0, -1.0]) * math.sqrt(2.0)
    w = torch.tensor([1.0, -1.0, 1.0, -1.0])
    c = 0.5 / 2.0  # Cov(u, c·u + s·w) = c·Var(u) = 0.5
    s = math.sqrt(1.0 - c * c * 2.0)  # Var = c²·2 + s²·1 = 1
    return torch.stack([u, c * u + s * w], dim=1)


def test_penalty_of_a_known_covariance():
    mean = means_with_covariance()
    centred = mean - mean.mean(0)
    assert torch.allclose(centred.T @ centred / 4, torch.tensor([[2.0, 0.5], [0.5, 1.0]]), atol=1e-6)
    logvar = torch.zeros(4, 2)
    # λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)² = λ_od · 2 · 0.25 + λ_d · (1 + 0)
    assert float(dip_penalty(mean, logvar, 3.0, 7.0, "i")) == pytest.approx(3.0 * 0.5 + 7.0 * 1.0, rel=1e-6)


def test_whitened_means_have_no_penalty():
    mean = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert float(dip_penalty(mean, torch.zeros(4, 2), 10.0, 100.0, "i")) == pytest.approx(0.0, abs=1e-7)


def test_zero_weights_are_the_vae_bit_for_bit(tmp_path):
    data = TinySquares()
    dip = trained_weights("dip-vae-i", data, tmp_path / "dip", lambda_od=0.0, lambda_d=0.0)
    vae = trained_weights("vae", data, tmp_path / "vae", beta=1.0)
    assert same_weights(dip, vae)
    assert not same_weights(trained_weights("dip-vae-i", data, tmp_path / "dip10"), vae)
