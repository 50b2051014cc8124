"""The score record: a model on a dataset -> code table -> metrics (+ protocols) -> one JSON-ready dict.

Scores come from :func:`disentbench.metrics.compute_metrics` on the factor classes and codes of the sampled
grid points (see :mod:`disentbench.evaluation.codes`); the record also holds the model source, the settings,
the versions of the package, metric definitions and leaderboard, the commit, the collapsed code dimensions
(``collapsed_dimensions``: indices, also said in the warnings; a leaderboard refuses such a record unless forced),
warnings, and each metric's settings and matrices (mutual information, DCI importance, Spearman
correlations, ...: what ``disentbench report`` draws; non-finite entries as null), and percentile-bootstrap
intervals of the scores over the evaluated points (:mod:`disentbench.evaluation.bootstrap`; ``intervals``,
``bootstrap``; the point estimates never depend on them). ``record_id`` = first 16 hex
digits of the SHA-256 of (model, model SHA-256, dataset, version, tier, seed, preset, metrics, points, with tasks).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from disentbench.evaluation.bootstrap import bootstrap, check_settings
from disentbench.evaluation.codes import DEFAULT_BATCH_SIZE, cached_codes, sample_indices
from disentbench.evaluation.protocols import MULTITASK_KEY, multitask_rmse, resolve_tasks
from disentbench.evaluation.sources import GROUND_TRUTH, EvaluationError, load_code_file, open_model
from disentbench.fileio import atomic_write_text
from disentbench.tiers import CUSTOM_SETTINGS, DEFAULT_N_POINTS, blas_kernels, bootstrap_limits

RECORD_FORMAT = "disentbench-score-record"
RECORD_FORMAT_VERSION = 1
#: the JSON Schema (draft 2020-12) of a score record, shipped in the package
RECORD_SCHEMA = Path(__file__).with_name("record.schema.json")


@functools.cache
def _record_validator():
    """The schema's validator, read and built once per process."""
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(RECORD_SCHEMA.read_text(encoding="utf-8")))


def validate_record(record: Any, where: str) -> dict[str, Any]:
    """Return ``record`` if it is a score record of this format version that matches :data:`RECORD_SCHEMA`; else
    raise :class:`EvaluationError` naming ``where`` and the failing path."""
    import jsonschema

    if not isinstance(record, dict) or record.get("record_format") != RECORD_FORMAT:
        found = record.get("record_format") if isinstance(record, dict) else type(record).__name__
        raise EvaluationError(f"{where}: not a score record (record_format {found!r}, expected {RECORD_FORMAT!r})")
    if record.get("record_format_version") != RECORD_FORMAT_VERSION:
        raise EvaluationError(f"{where}: record_format_version {record.get('record_format_version')!r} is not "
                              f"{RECORD_FORMAT_VERSION}, the version this disentbench reads")
    error = jsonschema.exceptions.best_match(_record_validator().iter_errors(record))
    if error is not None:
        raise EvaluationError(f"{where}: does not match the score-record schema at {error.json_path}: {error.message}")
    return record


def read_record(path: Path) -> dict[str, Any]:
    """A score-record JSON file, validated (format, version, schema)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: not valid JSON: {exc}") from None
    return validate_record(record, str(path))


def git_commit() -> str:
    """``git rev-parse HEAD`` of the source checkout (``-dirty`` if the package has uncommitted changes), else ``unknown``."""
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "disentbench"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if status else head


#: a code dimension whose spread is below this fraction of its magnitude is reported as collapsed
COLLAPSE_RATIO = 1e-3


def collapsed_dimensions(codes: np.ndarray) -> list[int]:
    """Dimensions j with std_j ≤ COLLAPSE_RATIO · (|mean_j| + std_j): constant up to numerical noise, whatever
    the scale (a collapsed or saturated encoder). Histogram metrics, being scale-invariant, still read them."""
    codes = np.asarray(codes, dtype=np.float64)
    std, mean = codes.std(axis=0), np.abs(codes.mean(axis=0))
    return [int(j) for j in np.nonzero(std <= COLLAPSE_RATIO * (mean + std))[0]]


def _finite_or_none(value: Any) -> Any:
    """Nested lists with NaN/inf floats replaced by None."""
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _details(result) -> dict[str, Any]:
    """A metric result as JSON-ready details, its matrices included (non-finite entries as None: strict JSON)."""
    details = result.to_dict(include_matrices=True)
    details["matrices"] = {k: _finite_or_none(v) for k, v in details["matrices"].items()}
    return details


def declared_supervision(model_type: str) -> str | None:
    """The ``supervision`` a registered model declares (e.g. ``supervised-pretrained``), else None."""
    from disentbench.models import list_models

    return next((m.supervision or None for m in list_models() if m.name == model_type), None)


def _record_id(parts: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(parts), default=str).encode()).hexdigest()[:16]


def evaluate(
    model: Path,
    dataset_name: str,
    *,
    metrics: str | Sequence[str] = "default",
    preset: str = "reference",
    seed: int = 0,
    n_points: int | None = DEFAULT_N_POINTS,
    tier: str | None = None,
    name: str | None = None,
    tasks: Path | str | None = None,
    task_epochs: int = 30,
    batch_size: int = DEFAULT_BATCH_SIZE,
    use_cache: bool = True,
    cache_root: Path | None = None,
    progress: bool = True,
    dataset=None,
    representation: str | None = None,
    bootstrap_resamples: int = CUSTOM_SETTINGS["bootstrap_resamples"],
    bootstrap_level: float = CUSTOM_SETTINGS["bootstrap_level"],
) -> dict[str, Any]:
    """Evaluate a model file (or ``ground-truth``) on a dataset and return the score record (a JSON-ready
    dict). ``tasks``: a task file or ``"default"`` adds the multi-task protocol. ``representation``: score a
    named alternative representation of a checkpoint's model (recorded in ``model_source.representation``)."""
    from disentbench import __version__
    from disentbench import metrics as metric_engine
    from disentbench.leaderboard import LEADERBOARD_VERSION

    start = time.perf_counter()
    check_settings(bootstrap_resamples, bootstrap_level)
    if dataset is None:
        from disentbench.data import get_dataset

        dataset = get_dataset(dataset_name)
    space = dataset.factor_space
    source = open_model(model, representation)
    selected = metric_engine.registry.resolve_selection(metrics)
    task_spec = resolve_tasks(tasks, dataset)
    if source.kind == "codes":
        codes, indices = load_code_file(source.path, dataset)
    else:
        indices = sample_indices(space.n_points, n_points, seed)
    classes = space.index_to_classes(indices)
    from_cache = False
    if source.kind == GROUND_TRUTH:
        codes = space.normalised(classes).astype(np.float32)
    elif source.kind != "codes":
        channels = source.info.get("channels")
        if channels is not None and int(channels) != int(dataset.channels):
            raise EvaluationError(
                f"{source.path}: the model takes {channels}-channel images but {dataset.name} has {dataset.channels}"
            )
        codes, from_cache = cached_codes(
            source, dataset, indices, batch_size=batch_size, progress=progress, use_cache=use_cache, root=cache_root
        )
    collapsed = collapsed_dimensions(codes)
    warnings = [] if not collapsed else [
        f"{len(collapsed)} of {codes.shape[1]} code dimensions are constant up to noise (std ≤ {COLLAPSE_RATIO:g} × "
        f"magnitude): {collapsed[:20]}; the model may have collapsed, and scale-invariant metrics read that noise"
    ]
    results = metric_engine.compute_metrics(classes, codes, selected, preset=preset, random_state=seed)
    scores: dict[str, float] = {}
    for result in results.values():
        scores.update(result.scores)
    task_info = None
    if task_spec is not None:
        taskset, task_info = task_spec
        rmse = multitask_rmse(codes, taskset.targets(classes), seed=seed, epochs=task_epochs)
        scores[MULTITASK_KEY] = float(rmse.mean())
        task_info.update(epochs=task_epochs, rmse_per_task=[float(v) for v in rmse])
    boot = None
    if bootstrap_resamples:
        boot = bootstrap(classes, codes, {k: r.scores for k, r in results.items()},
                         resamples=bootstrap_resamples, level=bootstrap_level, seed=seed, preset=preset,
                         limits=bootstrap_limits(preset, codes.shape[1]), excluded=[MULTITASK_KEY] if task_spec else [])
        warnings += boot.warnings()
    tier = tier or "custom"
    model_name = name or (source.model_type if source.kind in ("checkpoint", "safetensors") else source.path.stem)
    n_used = len(indices)
    record = {
        "record_format": RECORD_FORMAT,
        "record_format_version": RECORD_FORMAT_VERSION,
        "record_id": _record_id([model_name, source.sha256, dataset.name, dataset.version, tier, seed, preset, selected, n_used, tasks is not None]),
        "model": model_name,
        "model_config_hash": source.config_hash,
        "dataset": dataset.name,
        "dataset_version": str(dataset.version),
        "tier": tier,
        "seed": int(seed),
        "preset": preset,
        "metrics": scores,
        **({} if boot is None else {"intervals": boot.intervals, "bootstrap": boot.info()}),
        "model_source": {
            "path": str(source.path),
            "kind": source.kind,
            "sha256": source.sha256,
            "model_type": source.model_type,
            "representation": source.info.get("representation", "codes" if source.kind == "codes" else None),
        },
        "n_points": n_used,
        "codes_from_cache": from_cache,
        "code_dim": int(codes.shape[1]),
        "collapsed_dimensions": collapsed,
        "metric_details": {k: _details(r) for k, r in results.items()},
        "tasks": task_info,
        "settings": requested_settings(metrics, n_points, tasks, task_epochs, bootstrap_resamples, bootstrap_level,
                                       representation),
        "model_protocol": source.info.get("own_protocol"),
        "supervision": declared_supervision(source.model_type) if source.kind in ("checkpoint", "safetensors") else None,
        "disentbench_version": __version__,
        "metric_definitions_version": metric_engine.METRIC_DEFINITIONS_VERSION,
        "leaderboard_version": LEADERBOARD_VERSION,
        "commit": git_commit(),
        "blas_kernels": blas_kernels(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "warnings": warnings,
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    return record


def requested_settings(metrics, n_points, tasks, task_epochs, bootstrap_resamples, bootstrap_level,
                       representation) -> dict[str, Any]:
    """The record's ``settings``: the evaluation settings as requested, in JSON form."""
    return {"metrics": metrics if isinstance(metrics, str) else list(metrics), "n_points": n_points,
            "tasks": None if tasks is None else str(tasks), "task_epochs": int(task_epochs),
            "bootstrap_resamples": int(bootstrap_resamples), "bootstrap_level": float(bootstrap_level),
            "representation": representation}


def write_record(record: dict[str, Any], path: Path) -> Path:
    """Validate a score record against the schema and write it as JSON atomically."""
    validate_record(record, f"score record for {path}")
    atomic_write_text(Path(path), json.dumps(record, indent=2, sort_keys=False) + "\n")
    return Path(path)


def _format_interval(interval: Sequence[float | None] | None) -> str:
    """``[low, high]`` with four decimals; ``–`` for a score without an interval (or an end that failed)."""
    if interval is None or None in interval:
        return "–"
    return f"[{interval[0]:.4f}, {interval[1]:.4f}]"


def format_record(
    record: dict[str, Any], reference_rows: Sequence[dict[str, str]] = (), *, keys: Sequence[str] | None = None
) -> str:
    """A readable terminal table of a record's scores (with leaderboard rows beside it when given), each score's
    bootstrap interval beside it when the record has them."""
    from disentbench.leaderboard import ordered_metrics

    if keys is None:
        keys = ordered_metrics(record["metrics"])
    head = (
        f"{record['model']} on {record['dataset']} v{record['dataset_version']} — tier {record['tier']}, "
        f"seed {record['seed']}, preset {record['preset']}, {record['n_points']} points, code dim {record['code_dim']}"
    )
    intervals = record.get("intervals")
    interval_name = f"{record['bootstrap']['level']:.0%} interval" if intervals is not None else None
    names = ["this run", *([interval_name] if intervals is not None else []),
             *[f"{r['model']} s{r['seed']}" for r in reference_rows]]
    width = max(len(k) for k in keys) + 2
    col = max(10, *(len(n) + 2 for n in names), 20 if intervals is not None else 0)
    lines = [head, "metric".ljust(width) + "".join(n.rjust(col) for n in names)]
    for key in keys:
        cells = [f"{record['metrics'][key]:.4f}"]
        if intervals is not None:
            cells.append(_format_interval(intervals.get(key)))
        for row in reference_rows:
            cells.append(f"{float(row[key]):.4f}" if row.get(key) else "–")
        lines.append(key.ljust(width) + "".join(c.rjust(col) for c in cells))
    lines += [f"warning: {w}" for w in record.get("warnings", [])]
    return "\n".join(lines)
