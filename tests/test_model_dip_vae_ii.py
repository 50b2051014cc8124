"""DIP-VAE-II (Kumar et al. 2018, eq. 8): the aggregate-posterior covariance penalty on a known case."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, same_weights, trained_weights  # noqa: E402
from test_model_dip_vae_i import means_with_covariance  # noqa: E402

from disentbench.models.vae import dip_penalty  # noqa: E402


def test_penalty_adds_the_mean_encoder_variance_to_the_diagonal():
    """C = E[diag σ²] + Cov[μ] = diag(0.5, 0.5) + [[2, 0.5], [0.5, 1]]: λ_od·2·0.25 + λ_d·(1.5² + 0.5²)."""
    mean = means_with_covariance()
    logvar = torch.log(torch.full((4, 2), 0.5))
    assert float(dip_penalty(mean, logvar, 3.0, 7.0, "ii")) == pytest.approx(3.0 * 0.5 + 7.0 * 2.5, rel=1e-6)
    assert float(dip_penalty(mean, logvar, 3.0, 7.0, "i")) == pytest.approx(3.0 * 0.5 + 7.0 * 1.0, rel=1e-6)


def test_zero_weights_are_the_vae_and_the_two_types_differ(tmp_path):
    data = TinySquares()
    vae = trained_weights("vae", data, tmp_path / "vae", beta=1.0)
    assert same_weights(trained_weights("dip-vae-ii", data, tmp_path / "z", lambda_od=0.0, lambda_d=0.0), vae)
    one = trained_weights("dip-vae-i", data, tmp_path / "i", lambda_od=10.0, lambda_d=10.0)
    two = trained_weights("dip-vae-ii", data, tmp_path / "ii", lambda_od=10.0, lambda_d=10.0)
    assert not same_weights(one, two)
