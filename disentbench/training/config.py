"""Reference model configs (``reference_models/*.toml``) and the resolved run spec of one training run.

A TOML file holds ``name``, ``objective``, ``source``, ``[model]``, ``[loss]``, ``[optimizer]``, ``[data]``
and ``[tiers.<tier>]``. A tier sets ``subset`` (number of grid images, 0 = all), ``epochs``,
``batch_size``, ``checkpoint_every_steps`` and may override optimiser keys (``lr``,
``discriminator_lr``, ``lr_step_epochs``) and ``standardize_targets``. :func:`resolve_spec` merges file, tier and command-line
choices into one plain dict (the *run spec*) that is stored in every checkpoint; resuming requires
the same spec.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from disentbench.models import check_model_name

OBJECTIVES = ("none", "tasks", "autoencoder", "factor-vae", "frozen-heads", "frozen-decoder")
TIER_KEYS = ("subset", "epochs", "batch_size", "checkpoint_every_steps")
OPTIMIZER_OVERRIDES = ("lr", "discriminator_lr", "lr_step_epochs")
LOSS_OVERRIDES = ("standardize_targets",)
#: run-spec keys that may differ between an interrupted run and its resumption
RUNTIME_KEYS = ("device", "threads", "log_every_steps")


def reference_dir() -> Path:
    """The ``reference_models/`` folder of the source tree."""
    return Path(__file__).resolve().parents[2] / "reference_models"


def load_reference(model: str, path: str | Path | None = None) -> dict:
    """Read the reference config of ``model`` (or the TOML file at ``path``) and check its shape."""
    check_model_name(model)
    path = Path(path) if path else reference_dir() / f"{model}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no reference config for model {model!r} at {path}")
    with open(path, "rb") as fh:
        try:
            ref = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
    if ref.get("name") != model:
        raise ValueError(f"{path} describes model {ref.get('name')!r}, not {model!r}")
    if ref.get("objective") not in OBJECTIVES:
        raise ValueError(f"{path}: objective must be one of {OBJECTIVES}, got {ref.get('objective')!r}")
    for section in ("model", "data", "tiers"):
        if not isinstance(ref.get(section), dict):
            raise ValueError(f"{path}: missing [{section}] table")
    return ref


def resolve_spec(model: str, *, tier: str, seed: int, dataset: str, device: str = "cpu", threads: int | None = None,
                 reference: dict | None = None, task_index: int | None = None, log_every_steps: int = 10,
                 overrides: dict | None = None) -> dict:
    """The plain-data run spec for ``model`` at ``tier``. ``overrides`` replaces tier keys (tests use it)."""
    ref = copy.deepcopy(reference or load_reference(model))
    if tier not in ref["tiers"]:
        raise ValueError(f"model {model!r} has no tier {tier!r}; tiers: {', '.join(ref['tiers'])}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    budget = {**ref["tiers"][tier], **(overrides or {})}
    missing = [k for k in ("subset", "epochs", "batch_size") if k not in budget]
    if missing:
        raise ValueError(f"tier {tier!r} of {model!r} lacks {missing}")
    optimizer = dict(ref.get("optimizer", {}))
    optimizer.update({k: budget[k] for k in OPTIMIZER_OVERRIDES if k in budget})
    data = dict(ref["data"])
    if model == "single-task":
        data["task_index"] = int(data.get("task_index", 0) if task_index is None else task_index)
    elif task_index is not None:
        raise ValueError("--task-index applies to the single-task model only")
    spec = {
        "model": model,
        "objective": ref["objective"],
        "source": ref.get("source", ""),
        "model_options": ref["model"],
        "loss": {**ref.get("loss", {}), **{k: budget[k] for k in LOSS_OVERRIDES if k in budget}},
        "optimizer": optimizer,
        "data": {**data, "dataset": dataset, "subset": int(budget["subset"])},
        "tier": tier,
        "seed": int(seed),
        "epochs": 0 if ref["objective"] == "none" else int(budget["epochs"]),
        "batch_size": int(budget["batch_size"]),
        "checkpoint_every_steps": int(budget.get("checkpoint_every_steps", 1000)),
        "log_every_steps": int(log_every_steps),
        "device": device,
        "threads": threads,
    }
    if spec["batch_size"] < 2 or spec["epochs"] < 0 or spec["checkpoint_every_steps"] < 1 or spec["log_every_steps"] < 1:
        raise ValueError(f"invalid budget for tier {tier!r}: {budget}")
    return spec


def same_run(a: dict, b: dict) -> list[str]:
    """Keys on which two run specs differ, ignoring runtime-only keys (device, threads, logging)."""
    keys = (set(a) | set(b)) - set(RUNTIME_KEYS)
    return sorted(k for k in keys if a.get(k) != b.get(k))
