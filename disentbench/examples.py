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


FAMILIES = ("noise", "mixing", "missing", "nonlinear", "duplicated")


def controlled_family(
    kind: str,
    level: float,
    *,
    n_samples: int = 1_200,
    sizes: tuple[int, ...] = (4, 5, 6),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A representation from one controlled family of Carbonneau et al. 2022 (sec. 5): ``(classes, codes)``.

    Factor classes are drawn uniformly from the grid ``sizes`` with ``seed``; ``f`` is them scaled
    to [0, 1] and ``u`` independent U(0, 1) noise of the same shape. ``level`` sets the property:

    - ``noise`` (α in [0, 1]): ``z = (1 - α) f + α u``;
    - ``mixing`` (α in [0, 0.5]): ``z = f P`` with ``P = (1 - α) I + α S``, S the identity shifted by one;
    - ``missing`` (k = 0..K factors captured): ``z = [f_1 .. f_k, u_{k+1} .. u_K]``;
    - ``nonlinear`` (s in [0, 1]): ``z = B^(C-s) tan(ω (f - 0.5)) + 0.5``, ``ω = 2 arctan(B^(s-C) / 2)``,
      B = 1000, C = 0.25 (endpoints fixed, warp grows with s);
    - ``duplicated`` (copies >= 1): ``z = [f, f, ...]``.
    """
    if kind not in FAMILIES:
        raise ValueError(f"unknown family {kind!r}; choose from {FAMILIES}")
    rng = np.random.default_rng(seed)
    space = FactorSpace(tuple(f"v{k}" for k in range(len(sizes))), sizes)
    classes = space.sample_classes(n_samples, rng)
    f = space.normalised(classes)
    u = rng.uniform(size=f.shape)
    n_factors = f.shape[1]
    if kind == "noise":
        codes = (1.0 - level) * f + level * u
    elif kind == "mixing":
        mix = (1.0 - level) * np.eye(n_factors) + level * np.roll(np.eye(n_factors), 1, axis=1)
        codes = f @ mix
    elif kind == "missing":
        k = int(level)
        if not 0 <= k <= n_factors:
            raise ValueError(f"missing: level must be 0..{n_factors}, got {level}")
        codes = np.concatenate([f[:, :k], u[:, k:]], axis=1)
    elif kind == "nonlinear":
        big, centre = 1000.0, 0.25
        omega = 2.0 * np.arctan(big ** (level - centre) / 2.0)
        codes = big ** (centre - level) * np.tan(omega * (f - 0.5)) + 0.5
    else:
        codes = np.tile(f, (1, int(level)))
    return classes, codes
