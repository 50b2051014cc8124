"""Where one tier departs from another: every budget and model key of the resolved run specs (``[tiers.<tier>]`` of
each reference TOML, over its ``[model]`` table) and every evaluation setting of :data:`disentbench.tiers.TIER_PROTOCOLS`
whose values differ. ``docs/training.md`` lists the smoke tier's against the paper's in one table; a test keeps the
two the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: run-spec keys that are bookkeeping, not part of what is trained
IGNORED_KEYS = ("checkpoint_every_steps",)
BUDGET_KEYS = ("subset", "epochs", "batch_size")
#: the model name of evaluation-protocol rows
PROTOCOL = "evaluation"


@dataclass(frozen=True)
class Deviation:
    """``key`` of ``model`` (or of the evaluation protocol) is ``base`` in the reference tier, ``value`` in the other."""

    model: str
    key: str
    base: str
    value: str


def format_value(value: Any) -> str:
    """A setting as the table writes it: floats in ``%g`` form, booleans in TOML spelling, lists element-wise."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def _settings(spec: dict) -> dict[str, Any]:
    """The budget (subset ``0`` as ``all``) and the model config of a run spec, as one mapping."""
    return {"subset": spec["data"]["subset"] or "all", "epochs": spec["epochs"], "batch_size": spec["batch_size"],
            **spec["config"]}


def model_deviations(model: str, tier: str = "smoke", base: str = "paper") -> list[Deviation]:
    """The keys whose value for ``model`` differs between the ``base`` and ``tier`` run specs (a model trained in
    neither, e.g. the random encoder, has no budget to differ)."""
    from disentbench.training.config import resolve_spec

    specs = [_settings(resolve_spec(model, tier=t, seed=0, dataset="dsprites-procedural")) for t in (base, tier)]
    untrained = specs[0]["epochs"] == specs[1]["epochs"] == 0
    keys = [k for k in specs[1] if k not in IGNORED_KEYS and not (untrained and k in BUDGET_KEYS)]
    return [Deviation(model, k, format_value(specs[0].get(k)), format_value(specs[1][k]))
            for k in keys if specs[0].get(k) != specs[1][k]]


def protocol_deviations(tier: str = "smoke", base: str = "paper") -> list[Deviation]:
    """The evaluation settings that differ between the two tiers' protocols."""
    from disentbench.tiers import protocol

    a, b = protocol(base), protocol(tier)
    return [Deviation(PROTOCOL, k, format_value(a.get(k)), format_value(b[k])) for k in b if a.get(k) != b[k]]


def tier_deviations(tier: str = "smoke", base: str = "paper") -> list[Deviation]:
    """Every deviation of ``tier`` from ``base``: each registered model with a reference config, then the protocol."""
    from disentbench.models import list_models
    from disentbench.training.config import reference_dir

    models = [m.name for m in list_models() if (reference_dir() / f"{m.name}.toml").exists()]
    return [d for m in models for d in model_deviations(m, tier, base)] + protocol_deviations(tier, base)
