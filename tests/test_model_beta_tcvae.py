"""β-TCVAE (Chen et al. 2018): the minibatch TC estimate on hand-built cases, and β = 1 reducing to the VAE."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, same_weights, trained_weights  # noqa: E402

from disentbench.models.vae import total_correlation  # noqa: E402


def test_tc_is_zero_when_every_posterior_is_the_same():
    """Independent codes: q(z|x_b) identical for every b, so q(z) = ∏_j q(z_j) and the estimate is 0 exactly."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(32, 5, generator=gen)
    mean = torch.full((32, 5), 0.3).expand(32, 5)
    logvar = torch.full((32, 5), math.log(2.0))
    assert float(total_correlation(z, mean, logvar)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("batch,dims", [(4, 2), (8, 5)])
def test_tc_of_perfectly_correlated_deterministic_codes_is_d_minus_1_log_b(batch, dims):
    """z_b = a_b·1 (all dimensions equal), a_b far apart, σ tiny: each q(z|x_b) sees only its own point, so
    log q(z_b) = Σ_j log q(z_bj|x_b) − log B and log q(z_bj) = log q(z_bj|x_b) − log B: TC = (d − 1) log B."""
    a = 10.0 * torch.arange(batch, dtype=torch.float32)
    mean = a[:, None].expand(batch, dims).clone()
    logvar = torch.full((batch, dims), math.log(0.01))
    tc = float(total_correlation(mean, mean, logvar))
    assert tc == pytest.approx((dims - 1) * math.log(batch), rel=1e-5)


def test_tc_of_correlated_gaussian_codes_is_positive_and_grows_with_correlation():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(256, 1, generator=gen)
    noise = torch.randn(256, 2, generator=gen)
    logvar = torch.full((256, 2), math.log(0.05))
    values = []
    for rho in (0.0, 0.7, 0.99):
        z = rho * base + math.sqrt(1 - rho**2) * noise
        values.append(float(total_correlation(z, z, logvar)))
    assert values[0] < values[1] < values[2] and values[2] > 0.5


def test_beta_one_is_the_vae_bit_for_bit(tmp_path):
    """With β = 1 the TC term carries weight 0: the run equals a VAE (β = 1) from the same seed."""
    data = TinySquares()
    tc = trained_weights("beta-tcvae", data, tmp_path / "tc", beta=1.0)
    vae = trained_weights("vae", data, tmp_path / "vae", beta=1.0)
    assert same_weights(tc, vae)
    assert not same_weights(trained_weights("beta-tcvae", data, tmp_path / "tc6", beta=6.0), vae)
