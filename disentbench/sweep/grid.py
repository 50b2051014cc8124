"""Sweep files: a TOML grid (models × datasets × seeds at one tier) read strictly and expanded into cells.

A cell is one leaderboard row: train (unless ``ground-truth``; a ``mean-over-tasks`` model trains one run per
task), evaluate with the tier's protocol, add the record to the leaderboard. A staged model's upstream run is a cell
of its own that the staged cell depends on. A cell is named by the SHA-256 of its resolved spec (training spec with
overrides, evaluation settings, upstream cell, a row rule other than one run), so equal runs share one folder and
any change of what would run gives a new one.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

#: ``models = "leaderboard"``: the ground-truth anchor and every leaderboard model of the registry
LEADERBOARD_MODELS = "leaderboard"
KEYS = ("tier", "models", "datasets", "seeds", "overrides", "evaluation", "leaderboard", "work_dir", "retries", "threads", "device")


class SweepError(ValueError):
    """A sweep file or a cell is invalid; the message names the file and key."""


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file; paths are resolved against the file's folder."""

    path: Path
    tier: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: dict[str, dict[str, Any]]
    evaluation: dict[str, Any]  # evaluation settings replaced (rows then go to the ``custom`` table, as with overrides)
    leaderboard: Path
    work_dir: Path
    retries: int = 2
    threads: int | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class Cell:
    """One run of a sweep. ``spec`` is what the id hashes; ``scored``: its record goes into the leaderboard."""

    model: str
    dataset: str
    seed: int
    spec: dict[str, Any] = field(repr=False, compare=False)
    id: str
    scored: bool
    upstream: str | None = None  # id of the cell this one trains on

    @property
    def name(self) -> str:
        return f"{self.model}_{self.dataset}_{self.seed}_{self.id}"


def cell_id(spec: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of a resolved cell spec (the training spec's
    ``source``, a citation, is left out: rewording it changes no run)."""
    if spec.get("train"):
        spec = {**spec, "train": {k: v for k, v in spec["train"].items() if k != "source"}}
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; every error names the file and the key."""
    from disentbench import tiers

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"sweep file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown key {unknown[0]!r} (known keys: {', '.join(KEYS)})")
    for key in ("tier", "models", "datasets", "seeds"):
        if key not in raw:
            raise SweepError(f"{path}: missing key {key!r}")
    tier = raw["tier"]
    if tier not in tiers.TIERS:
        raise SweepError(f"{path}: unknown tier {tier!r} (tiers: {', '.join(tiers.TIERS)})")
    models = raw["models"]
    if models == LEADERBOARD_MODELS:
        models = list(tiers.smoke_models())
    base = path.resolve().parent
    from disentbench.leaderboard import version_dir

    sweep = Sweep(
        path=path,
        tier=tier,
        models=tuple(_names(models, path, "models")),
        datasets=tuple(_names(raw["datasets"], path, "datasets")),
        seeds=tuple(_seeds(raw["seeds"], path)),
        overrides=_overrides(raw.get("overrides", {}), path),
        evaluation=_evaluation(raw.get("evaluation", {}), path),
        leaderboard=(base / raw["leaderboard"]).resolve() if "leaderboard" in raw else version_dir(),
        work_dir=(base / raw.get("work_dir", f"runs/{path.stem}")).resolve(),
        retries=_int(raw.get("retries", 2), path, "retries", minimum=0),
        threads=_int(raw["threads"], path, "threads", minimum=1) if "threads" in raw else tiers.protocol(tier)["threads"],
        device=str(raw.get("device", "cpu")),
    )
    _check_names(sweep)
    return sweep


def _names(value: Any, path: Path, key: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        hint = f' or "{LEADERBOARD_MODELS}"' if key == "models" else ""
        raise SweepError(f"{path}: {key!r} must be a non-empty list of names{hint}")
    if len(set(value)) != len(value):
        raise SweepError(f"{path}: {key!r} lists a name twice")
    return value


def _seeds(value: Any, path: Path) -> list[int]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise SweepError(f"{path}: 'seeds' must be a non-empty list of non-negative integers")
    if len(set(value)) != len(value):
        raise SweepError(f"{path}: 'seeds' lists a seed twice")
    return value


def _int(value: Any, path: Path, key: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SweepError(f"{path}: {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _overrides(value: Any, path: Path) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SweepError(f"{path}: 'overrides' must hold one table per model ([overrides.MODEL])")
    return value


def _evaluation(value: Any, path: Path) -> dict[str, Any]:
    from disentbench.tiers import CUSTOM_SETTINGS

    if not isinstance(value, dict):
        raise SweepError(f"{path}: 'evaluation' must be a table of evaluation settings")
    unknown = sorted(set(value) - set(CUSTOM_SETTINGS))
    if unknown:
        raise SweepError(f"{path} [evaluation]: unknown key {unknown[0]!r} (known: {', '.join(CUSTOM_SETTINGS)})")
    if value.get("tasks", "") is True:
        raise SweepError(f"{path} [evaluation]: 'tasks' is a task file, \"default\", or false (no multi-task protocol)")
    return {k: None if k == "tasks" and v is False else v for k, v in value.items()}


def _check_names(sweep: Sweep) -> None:
    from disentbench.data.registry import get_entry
    from disentbench.evaluation import GROUND_TRUTH
    from disentbench.models import get_model

    for name in sweep.datasets:
        try:
            get_entry(name)
        except KeyError as exc:
            raise SweepError(f"{sweep.path}: {exc.args[0]}") from None
    for name in (*sweep.models, *sweep.overrides):
        if name == GROUND_TRUTH:
            if name in sweep.overrides:
                raise SweepError(f"{sweep.path}: [overrides.{name}]: ground-truth has nothing to train")
            continue
        try:
            get_model(name)
        except ValueError as exc:
            raise SweepError(f"{sweep.path}: {exc}") from None


def subset(sweep: Sweep, *, models: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
           seeds: Sequence[int] | None = None) -> Sweep:
    """The part of ``sweep`` on the given models, datasets and seeds (None: all of the file's), each of which must be
    in the file: its cells are the file's cells (same ids and folders), so the file's sweep later finds them done."""
    chosen = {}
    for key, values in (("models", models), ("datasets", datasets), ("seeds", seeds)):
        if values is None:
            continue
        outside = [v for v in values if v not in getattr(sweep, key)]
        if outside:
            raise SweepError(f"{sweep.path}: {outside[0]!r} is not in the file's {key!r} "
                             f"({', '.join(map(str, getattr(sweep, key)))})")
        chosen[key] = tuple(v for v in getattr(sweep, key) if v in values)  # the file's order
    return replace(sweep, **chosen)


def record_tier(sweep: Sweep) -> str:
    """The table a sweep's records go to: its tier's, or ``custom`` when it overrides a model's budget or config or
    changes the tier's evaluation (its scores then do not compare with the tier's rows, and must not take the place
    of a reference row of the same model, dataset and seed)."""
    return "custom" if sweep.evaluation or sweep.overrides else sweep.tier


def expand(sweep: Sweep) -> list[Cell]:
    """The cells of ``sweep``, every upstream cell before the cells that train on it (seed, dataset, model order)."""
    cells: dict[str, Cell] = {}
    for seed in sweep.seeds:
        for dataset in sweep.datasets:
            for model in sweep.models:
                _add_cell(sweep, model, dataset, seed, True, cells)
    unused = sorted(set(sweep.overrides) - {c.model for c in cells.values()})
    if unused:
        raise SweepError(f"{sweep.path}: [overrides.{unused[0]}]: {unused[0]} is neither in 'models' nor an upstream stage")
    return list(cells.values())


def _add_cell(sweep: Sweep, model: str, dataset: str, seed: int, scored: bool, cells: dict[str, Cell]) -> Cell:
    from disentbench.evaluation import GROUND_TRUTH
    from disentbench.models import get_model
    from disentbench.models.registry import ROW_RUN
    from disentbench.tiers import evaluation_settings
    from disentbench.training import resolve_spec

    upstream = None
    train = None
    if model != GROUND_TRUTH:
        info = get_model(model)
        if "upstream" in info.needs:
            if not info.upstream:
                raise SweepError(f"{sweep.path}: {model} trains on the run of any model; a sweep cannot choose it")
            upstream = _add_cell(sweep, info.upstream[0], dataset, seed, info.upstream[0] in sweep.models, cells)
        try:
            train = resolve_spec(model, tier=sweep.tier, seed=seed, dataset=dataset, device=sweep.device,
                                 threads=sweep.threads, overrides=sweep.overrides.get(model))
        except ValueError as exc:
            where = f" [overrides.{model}]" if model in sweep.overrides else ""
            raise SweepError(f"{sweep.path}{where}: {exc}") from None
    spec = {"model": model, "dataset": dataset, "seed": seed, "tier": sweep.tier, "train": train,
            "evaluation": {**evaluation_settings(sweep.tier), **sweep.evaluation}, "record_tier": record_tier(sweep),
            "upstream": upstream.id if upstream else None}
    if model != GROUND_TRUTH and info.row != ROW_RUN:
        spec["row"] = info.row  # only then: the cells of one-run models keep their ids
    cell = Cell(model, dataset, seed, spec, cell_id(spec), scored, upstream.id if upstream else None)
    known = cells.get(cell.id)
    if known is None or (scored and not known.scored):
        cells[cell.id] = cell
    return cells[cell.id]
