"""Built-in example representations with known structure (for the demo, tests and documentation).

Everything is made in-process from a fixed seed: no dataset download, no model.
"""

from __future__ import annotations

import numpy as np

from disentbench.factors import FactorSpace

#: the dSprites factor grid (shape, scale, orientation, posX, posY), 737,280 points
DSPRITES_LIKE = FactorSpace(("shape", "scale", "orientation", "posX", "posY"), (3, 6, 40, 32, 32))


def example_representation(
    n_samples: int = 20_000,
    *,
    noise: float = 0.05,
    rotation: float = 0.2,
    n_nuisance: int = 4,
    n_collapsed: int = 1,
    seed: int = 0,
    space: FactorSpace = DSPRITES_LIKE,
) -> tuple[np.ndarray, np.ndarray]:
    """A noisy, slightly rotated code over a factor grid: ``(factor_classes, codes)``.

    Rows are ``n_samples`` grid points drawn uniformly with ``seed``. Codes: the factors scaled to
    [0, 1], consecutive pairs rotated by ``rotation`` radians (so each code mixes two factors a
    little), plus Gaussian noise of std ``noise``; then ``n_nuisance`` pure-noise codes and
    ``n_collapsed`` constant codes (as the collapsed latents of a VAE). Shape
    (n_samples, n_factors + n_nuisance + n_collapsed).
    """
    rng = np.random.default_rng(seed)
    classes = space.sample_classes(n_samples, rng)
    z = space.normalised(classes)
    c, s = np.cos(rotation), np.sin(rotation)
    for a in range(0, space.n_factors - 1, 2):
        first, second = z[:, a].copy(), z[:, a + 1].copy()
        z[:, a], z[:, a + 1] = c * first - s * second, s * first + c * second
    z = z + noise * rng.standard_normal(z.shape)
    nuisance = 0.3 * rng.standard_normal((n_samples, n_nuisance))
    collapsed = np.zeros((n_samples, n_collapsed))
    return classes, np.concatenate([z, nuisance, collapsed], axis=1)
