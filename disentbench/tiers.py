"""Tiers: the named budgets of the reference runs and the evaluation protocol of each tier's leaderboard.

A tier (``smoke``, ``paper``) fixes how its runs are trained (the ``[tiers.<name>]`` budget of each reference
model's TOML) and how they are scored (:data:`TIER_PROTOCOLS`), so that every row of ``leaderboards/v<N>/<tier>.csv``
compares with every other. Evaluations outside a tier use :data:`CUSTOM_SETTINGS`. This module imports nothing
from the package at import time (the smoke model list reads the model registry when asked): evaluation, training
and the CLI read it.
"""

from __future__ import annotations

from typing import Any

#: default number of grid points encoded: enough for the reference settings (DCI / SAP: 10,000 train +
#: 5,000 test; MIG, FactorVAE variance, BetaVAE, modularity: 10,000)
DEFAULT_N_POINTS = 15_000
#: ``tasks=DEFAULT_TASKS``: the dataset's default task set (what the task models train on)
DEFAULT_TASKS = "default"

#: how a tier's leaderboard rows are evaluated (the smoke tier uses the ``fast`` preset: the reference
#: DCI with 100-stage boosted trees per factor takes over 10 minutes per model on two CPU cores). Both add
#: the multi-task protocol on the default task set (seed 004 Table 1: 30 epochs; smoke: 10, ~1,900 steps) and
#: 95 % bootstrap intervals from 100 resamples (fewer for the costly metrics: :data:`BOOTSTRAP_LIMITS`).
TIER_PROTOCOLS: dict[str, dict[str, Any]] = {
    "smoke": {"metrics": "default", "preset": "fast", "n_points": DEFAULT_N_POINTS, "threads": 2,
              "tasks": DEFAULT_TASKS, "task_epochs": 10, "bootstrap_resamples": 100, "bootstrap_level": 0.95},
    "paper": {"metrics": "default", "preset": "reference", "n_points": DEFAULT_N_POINTS, "threads": None,
              "tasks": DEFAULT_TASKS, "task_epochs": 30, "bootstrap_resamples": 100, "bootstrap_level": 0.95},
}
#: the tier names, in order of cost (``disentbench train --tier`` / ``evaluate --tier`` choices)
TIERS = tuple(TIER_PROTOCOLS)

#: evaluation settings outside any tier (``disentbench evaluate`` without ``--tier``)
CUSTOM_SETTINGS: dict[str, Any] = {
    "metrics": "default", "preset": "reference", "n_points": DEFAULT_N_POINTS, "tasks": None, "task_epochs": 30,
    "bootstrap_resamples": 100, "bootstrap_level": 0.95,
}

#: the bootstrap intervals (``bootstrap_resamples`` resamples of the code table, 0 = none; ``bootstrap_level``)
#: give the metrics that cost most fewer resamples: the most each gets under a preset (0: no interval). Measured
#: CPU seconds per resample on the smoke protocol (docs/evaluation.md#bootstrap-intervals): DCI 19-24 with the
#: ``fast`` histogram GBT (the reference's 100-stage GBT: ~11 minutes), explicitness ~3.4, InfoMEC ~1.6, every
#: other metric 0.5 or less. A preset not named here takes the ``reference`` limits.
BOOTSTRAP_LIMITS: dict[str, dict[str, int]] = {
    "reference": {"dci": 0, "explicitness": 10, "infomec": 20},
    "fast": {"dci": 10, "explicitness": 10, "infomec": 20},
}


#: codes wider than this (DualDis's and HybridNet's 256 pooled channels) get :data:`WIDE_CODE_LIMITS` on top: the
#: per-resample cost of the predictor metrics grows with the code width. Measured on a 256-wide HybridNet code
#: (mpi3d-procedural, 15,000 points, ``fast``, two threads, 2026-12-07, partly shared with a test run): the fast
#: DCI 323 s, InfoMEC 6.8 s, SAP 3.2 s, explicitness 2.9 s, BetaVAE 2.6 s, every other metric under 0.4 s; at the
#: ``fast`` caps the bootstrap would add an estimated ~4,100 s to a 382 s evaluation, with these ~300 s.
WIDE_CODE_DIM = 64
WIDE_CODE_LIMITS: dict[str, int] = {"dci": 0, "infomec": 10, "sap": 10, "explicitness": 10, "beta_vae": 10}


def bootstrap_limits(preset: str, code_dim: int = 0) -> dict[str, int]:
    """The per-metric resample limits of ``preset`` (:data:`BOOTSTRAP_LIMITS`; ``reference``'s for others), with
    :data:`WIDE_CODE_LIMITS` where the code is wider than :data:`WIDE_CODE_DIM`."""
    limits = dict(BOOTSTRAP_LIMITS.get(preset, BOOTSTRAP_LIMITS["reference"]))
    if code_dim > WIDE_CODE_DIM:
        limits.update({k: min(v, limits.get(k, v)) for k, v in WIDE_CODE_LIMITS.items()})
    return limits


def smoke_models() -> tuple[str, ...]:
    """The models of the smoke tier: the ``ground-truth`` anchor, then every registered leaderboard model in
    registration order (read from the model registry, so a new model joins the tier by registering)."""
    from disentbench.models import list_models

    return ("ground-truth", *(m.name for m in list_models(leaderboard=True)))


SMOKE_DATASETS = ("dsprites-procedural", "shapes3d-procedural", "mpi3d-procedural")
#: the seeds of each tier's runs (the committed sweep files ``leaderboards/sweeps/<tier>.toml`` list the same).
#: Three, as seed 004 (Table 5: mean ± std over 3 seeds); at n = 3 the smoke tier's spreads resolve only its large
#: gaps: ``disentbench.leaderboard.compare.seeds_needed`` says how many seeds a given gap needs.
TIER_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0, 1, 2), "paper": (0, 1, 2)}
#: the fixed subset of the smoke tier that CI retrains and compares: (model, dataset, seed). ground-truth
#: (nothing to train) pins every metric and the multi-task protocol on a perfect representation; one-head is
#: the cheapest trained run of the tier.
CI_SUBSETS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "ci": (("ground-truth", "dsprites-procedural", 0), ("one-head", "shapes3d-procedural", 0)),
}
#: absolute tolerance of the CI score regression, per metric value. Same code on the same platform is
#: bit-identical (measured); the tolerance only absorbs BLAS / oneDNN kernel differences between CPUs,
#: which perturb training in the last bits and can move scores of a few-hundred-step smoke run by ~1e-3.
#: A change of definition, default or data moves scores by far more than this.
CI_TOLERANCE = 0.02


def protocol(tier: str) -> dict[str, Any]:
    """A copy of ``tier``'s evaluation protocol; an unknown tier is a ``ValueError`` listing the known ones."""
    if tier not in TIER_PROTOCOLS:
        raise ValueError(f"unknown tier {tier!r}; tiers: {', '.join(TIER_PROTOCOLS)}")
    return dict(TIER_PROTOCOLS[tier])


def evaluation_settings(tier: str | None, **given: Any) -> dict[str, Any]:
    """The settings of an evaluation: a known tier's protocol (so its rows compare with that tier's table),
    else :data:`CUSTOM_SETTINGS`; every setting given explicitly (not None) overrides."""
    settings = dict(CUSTOM_SETTINGS)
    if tier in TIER_PROTOCOLS:
        settings.update({k: v for k, v in TIER_PROTOCOLS[tier].items() if k in settings})
    settings.update({k: v for k, v in given.items() if v is not None})
    return settings

#: OpenBLAS's float32 GEMM kernel that the committed smoke table was computed with. OpenBLAS picks its kernel by the
#: CPU (SkylakeX on Intel servers and AMD Zen 4, Haswell on Zen 5) unless ``OPENBLAS_CORETYPE`` names one; the two
#: sum in different orders, the task targets differ in the last bits and a trained smoke run ends elsewhere (moved by
#: up to 0.21 in the CI run; with this kernel it matched exactly). The regression refuses to compare under another.
TABLE_BLAS_KERNEL = "SkylakeX"


def blas_kernels() -> list[str]:
    """OpenBLAS kernels (``architecture``) loaded in this process, as threadpoolctl reports them (NumPy, SciPy)."""
    from threadpoolctl import threadpool_info

    return sorted({i.get("architecture") or "unknown" for i in threadpool_info() if i.get("internal_api") == "openblas"})


def torch_cpu_capability() -> str:
    """The instruction set PyTorch's CPU kernels dispatch to (``AVX2``, ``AVX512``, ...), or ``none`` without torch."""
    try:
        import torch
    except ImportError:
        return "none"
    return str(torch.backends.cpu.get_cpu_capability())
