"""Reference configs (``reference_models/<name>.toml``), read strictly, and the resolved run spec of one run.

A TOML file holds ``name`` (the registry name), ``source`` (paper, section, equation), ``[model]`` (every key of the
model's config dataclass), ``[data]`` (:class:`DataConfig`) and one ``[tiers.<tier>]`` table per tier of
:data:`disentbench.tiers.TIERS`: the budget (:class:`TierBudget`) plus any ``[model]`` key the tier overrides (e.g.
a smoke-only learning rate). An unknown, misspelt or missing key, a wrong type or a missing tier is a
:class:`~disentbench.models.config.ConfigError` naming the file and the key.

:func:`resolve_spec` merges file, tier and command-line choices into one plain dict (the *run spec*) that is stored
in the run folder and every checkpoint; resuming requires the same spec.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from disentbench.models.config import ConfigError, config_to_dict, field_names, parse_config
from disentbench.tiers import TIERS

#: run-spec keys that may differ between an interrupted run and its resumption
RUNTIME_KEYS = ("device", "threads", "log_every_steps", "metrics_every_steps")
TOP_KEYS = ("name", "source", "model", "data", "tiers")


@dataclass(frozen=True)
class DataConfig:
    """Seeded subset and split of the grid; task models also take ``n_tasks`` (the default task set's size when no
    ``--tasks`` file is given) and optionally ``task_index`` (train on that one task: the single-task model); staged
    models optionally ``upstream_dataset``: the dataset their ``--from`` run was trained on when it is not this
    run's, a look-alike with the same factors (fine-tune on a procedural rendering, train and score on the official
    files)."""

    split_seed: int
    test_fraction: float
    n_tasks: int | None = None
    task_index: int | None = None
    upstream_dataset: str | None = None

    def __post_init__(self):
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"key 'test_fraction' must be in (0, 1), got {self.test_fraction}")


@dataclass(frozen=True)
class TierBudget:
    """``subset``: grid images used (0 = all); ``epochs``; ``batch_size``; ``checkpoint_every_steps``."""

    subset: int
    epochs: int
    batch_size: int
    checkpoint_every_steps: int

    def __post_init__(self):
        if self.subset < 0 or self.epochs < 0 or self.batch_size < 2 or self.checkpoint_every_steps < 1:
            raise ValueError(f"invalid budget: subset >= 0, epochs >= 0, batch_size >= 2 and "
                             f"checkpoint_every_steps >= 1 are required, got {self}")


@dataclass(frozen=True)
class Reference:
    """A reference config read from its TOML: the pieces :func:`resolve_spec` combines."""

    name: str
    source: str
    path: Path
    model: dict[str, Any]
    data: DataConfig
    tiers: dict[str, dict[str, Any]]


def reference_dir() -> Path:
    """The ``reference_models/`` folder of the source tree."""
    return Path(__file__).resolve().parents[2] / "reference_models"


def _table(ref: dict, key: str, where: str) -> dict:
    if key not in ref:
        raise ConfigError(f"{where}: missing key {key!r}")
    if not isinstance(ref[key], dict):
        raise ConfigError(f"{where}: key {key!r} must be a table")
    return ref[key]


def load_reference(model: str, path: str | Path | None = None) -> Reference:
    """Read and check the reference config of ``model`` (or the TOML file at ``path``)."""
    from disentbench.models import get_model

    info = get_model(model)
    path = Path(path) if path else reference_dir() / f"{model}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no reference config for model {model!r} at {path}")
    with open(path, "rb") as fh:
        try:
            ref = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(ref) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known keys: {', '.join(TOP_KEYS)})")
    for key in ("name", "source"):
        if not isinstance(ref.get(key), str):
            raise ConfigError(f"{path}: missing key {key!r} (a string)")
    if ref["name"] != model:
        raise ConfigError(f"{path} describes model {ref['name']!r}, not {model!r}")
    model_table = _table(ref, "model", str(path))
    parse_config(info.config, model_table, f"{path} [model]")
    data = parse_config(DataConfig, _table(ref, "data", str(path)), f"{path} [data]")
    if "targets" not in info.needs and (data.n_tasks is not None or data.task_index is not None):
        raise ConfigError(f"{path} [data]: key {'n_tasks' if data.n_tasks is not None else 'task_index'!r} applies "
                          f"to task models only")
    if "upstream" not in info.needs and data.upstream_dataset is not None:
        raise ConfigError(f"{path} [data]: key 'upstream_dataset' applies to staged models (trained --from a run) only")
    tiers = _table(ref, "tiers", str(path))
    for tier in TIERS:
        if tier not in tiers:
            raise ConfigError(f"{path}: missing tier table [tiers.{tier}]")
    for tier, table in tiers.items():
        where = f"{path} [tiers.{tier}]"
        if tier not in TIERS:
            raise ConfigError(f"{path}: unknown tier {tier!r} (tiers: {', '.join(TIERS)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        budget_keys = field_names(TierBudget)
        model_keys = field_names(info.config)
        unknown = sorted(k for k in table if k not in budget_keys and k not in model_keys)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (a budget key {', '.join(budget_keys)} or a "
                              f"[model] key)")
        parse_config(TierBudget, {k: v for k, v in table.items() if k in budget_keys}, where)
        parse_config(info.config, {**model_table, **{k: v for k, v in table.items() if k in model_keys}}, where)
    return Reference(model, ref["source"], path, model_table, data, tiers)


def resolve_spec(model: str, *, tier: str, seed: int, dataset: str, device: str = "cpu", threads: int | None = None,
                 reference: Reference | None = None, task_index: int | None = None, log_every_steps: int = 10,
                 overrides: dict | None = None) -> dict:
    """The plain-data run spec for ``model`` at ``tier``. ``overrides`` replaces budget or model keys (tests use it)."""
    from disentbench.models import get_model

    info = get_model(model)
    ref = reference or load_reference(model)
    if tier not in ref.tiers:
        raise ConfigError(f"{ref.path}: model {model!r} has no tier {tier!r}; tiers: {', '.join(ref.tiers)}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    table = {**ref.tiers[tier], **(overrides or {})}
    where = f"{ref.path} [tiers.{tier}]" + (" with overrides" if overrides else "")
    budget_keys = field_names(TierBudget)
    unknown = sorted(k for k in table if k not in budget_keys and k not in field_names(info.config))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    budget = parse_config(TierBudget, {k: v for k, v in table.items() if k in budget_keys}, where)
    config = parse_config(info.config, {**ref.model, **{k: v for k, v in table.items() if k not in budget_keys}},
                          where)
    data = {f.name: getattr(ref.data, f.name) for f in fields(DataConfig)}
    if task_index is not None:
        if "targets" not in info.needs:
            raise ValueError(f"--task-index applies to task models only, not {model!r}")
        data["task_index"] = int(task_index)
    data = {k: v for k, v in data.items() if v is not None}
    return {
        "model": model,
        "source": ref.source,
        "config": config_to_dict(config),
        "data": {**data, "dataset": dataset, "subset": budget.subset},
        "tier": tier,
        "seed": int(seed),
        "epochs": budget.epochs if info.cls.trainable else 0,
        "batch_size": budget.batch_size,
        "checkpoint_every_steps": budget.checkpoint_every_steps,
        "log_every_steps": int(log_every_steps),
        "device": device,
        "threads": threads,
    }


def same_run(a: dict, b: dict) -> list[str]:
    """Keys on which two run specs differ, ignoring runtime-only keys (device, threads, logging)."""
    keys = (set(a) | set(b)) - set(RUNTIME_KEYS)
    return sorted(k for k in keys if a.get(k) != b.get(k))
