"""Reference runs of a tier: train one in a subprocess (``disentbench train``), score it with the tier's protocol.

A leaderboard row is what the model's registry entry declares (``row``): one run in ``run_dir``, or, for
``row="mean-over-tasks"`` (seed 004's "single-mean"), one run per task of the model's reference task set, each in
its own sub-folder ``run_dir/task_KK/`` trained with ``--task-index KK`` and scored into ``task_KK/record.json``;
the row's record is their per-metric mean (:mod:`disentbench.evaluation.aggregate`). An interrupted row resumes:
finished task runs are kept, a partial one continues from its checkpoint.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from disentbench.evaluation.aggregate import aggregate_records
from disentbench.evaluation.record import evaluate, read_record, requested_settings, write_record
from disentbench.evaluation.sources import GROUND_TRUTH, EvaluationError
from disentbench.tiers import evaluation_settings, protocol

FINAL, RESUME, RECORD = "model.pt", "checkpoint.pt", "record.json"
#: the evaluation settings a task record must share with the request to be reused (:func:`finished_record`)
REQUESTED = ("metrics", "n_points", "tasks", "task_epochs", "bootstrap_resamples", "bootstrap_level", "representation")
EVALUATE_DEFAULTS = {name: p.default for name, p in inspect.signature(evaluate).parameters.items()}


def mean_over_tasks(model: str) -> bool:
    """Whether a leaderboard row of ``model`` is the mean over one run per task (registry ``row``)."""
    from disentbench.models.registry import ROW_MEAN_OVER_TASKS, get_model

    return model != GROUND_TRUTH and get_model(model).row == ROW_MEAN_OVER_TASKS


def task_dir(run_dir: Path, index: int) -> Path:
    """The folder of task ``index``'s run inside a mean-over-tasks row's folder: ``run_dir/task_KK``."""
    return Path(run_dir) / f"task_{index:02d}"


def row_runs(model: str, run_dir: Path) -> list[tuple[Path, int | None]]:
    """The training runs that make one row of ``model``, as (folder, task index): ``[(run_dir, None)]``, or one
    ``(run_dir/task_KK, KK)`` per task of the reference config's ``[data] n_tasks`` for a mean-over-tasks model."""
    if not mean_over_tasks(model):
        return [(Path(run_dir), None)]
    from disentbench.tasks import DEFAULT_N_TASKS
    from disentbench.training.config import load_reference

    n_tasks = load_reference(model).data.n_tasks or DEFAULT_N_TASKS
    return [(task_dir(run_dir, k), k) for k in range(n_tasks)]


def row_model(model: str, run_dir: Path) -> Path:
    """What a finished row trains to: ``run_dir/model.pt``, or ``run_dir`` itself for a mean-over-tasks model."""
    return Path(run_dir) if mean_over_tasks(model) else Path(run_dir) / FINAL


def is_trained(model: str, run_dir: Path) -> bool:
    """Whether every run of ``model``'s row in ``run_dir`` has its final ``model.pt``."""
    return all((folder / FINAL).is_file() for folder, _ in row_runs(model, run_dir))


def task_spec(spec: dict, index: int) -> dict:
    """The run spec of task ``index``'s run of a mean-over-tasks row (``spec`` with ``[data] task_index``), as
    ``resolve_spec(..., task_index=index)`` gives it."""
    return {**spec, "data": {**spec["data"], "task_index": int(index)}}


def train_run(
    model: str, dataset: str, seed: int, tier: str, run_dir: Path, *, quiet: bool = True, tasks: Path | None = None
) -> Path:
    """Train a reference model's row with ``disentbench train`` in subprocesses; returns :func:`row_model` (the
    ``model.pt``, or the row folder of a mean-over-tasks model; ``ground-truth`` has nothing to train and is
    returned as is). Finished runs are skipped and partial ones resumed. A staged model's upstream run (the first
    model its registry entry accepts; same dataset, seed and tier) is trained first, beside ``run_dir``, and passed
    as ``--from``."""
    if model == GROUND_TRUTH:
        return Path(GROUND_TRUTH)
    run_dir = Path(run_dir)
    if is_trained(model, run_dir):
        return row_model(model, run_dir)
    cmd = [sys.executable, "-m", "disentbench", "train", model, "--dataset", dataset, "--seed", str(seed),
           "--tier", tier]
    from disentbench.models import get_model

    info = get_model(model)
    if "upstream" in info.needs:
        if not info.upstream:
            raise EvaluationError(f"{model} trains on the run of any model: train it with --from, not in a tier run")
        upstream = info.upstream[0]
        name = run_dir.name
        upstream_dir = run_dir.with_name(name.replace(model, upstream, 1) if name.startswith(model)
                                         else f"{name}.{upstream}")
        cmd += ["--from", str(train_run(upstream, dataset, seed, tier, upstream_dir, quiet=quiet, tasks=tasks).parent)]
    threads = protocol(tier).get("threads")
    if threads:
        cmd += ["--threads", str(threads)]
    if tasks is not None:
        cmd += ["--tasks", str(tasks)]
    if quiet:
        cmd.append("--no-progress")
    for folder, index in row_runs(model, run_dir):
        what = f"{model} on {dataset} (seed {seed}, tier {tier}{'' if index is None else f', task {index}'})"
        _train_one(cmd + ([] if index is None else ["--task-index", str(index)]), folder, what, quiet)
    return row_model(model, run_dir)


def _train_one(cmd: list[str], folder: Path, what: str, quiet: bool) -> None:
    """Run the training command ``cmd`` into ``folder`` (skipped if finished, resumed if it has a checkpoint)."""
    if (folder / FINAL).is_file():
        return
    cmd = [*cmd, "--out", str(folder), *(["--resume"] if (folder / RESUME).is_file() else [])]
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0 or not (folder / FINAL).is_file():
        tail = (proc.stderr or "")[-2000:] if quiet else ""
        raise EvaluationError(f"training {what} failed ({proc.returncode}): {tail}")


def evaluate_tasks(run_dir: Path, model: str, dataset: str, *, seed: int, tier: str | None, progress: bool = False,
                   **settings) -> dict:
    """Score every task run of a mean-over-tasks row in ``run_dir`` (``evaluate`` with ``settings``; each record
    written to ``task_KK/record.json``, where a record an interrupted evaluation left for the same model file and
    settings is reused) and return their mean record (:func:`aggregate_records`)."""
    runs = row_runs(model, run_dir)
    unfinished = [str(folder) for folder, _ in runs if not (folder / FINAL).is_file()]
    if unfinished:
        raise EvaluationError(f"{run_dir}: {len(unfinished)} of {len(runs)} task runs of {model} are not trained "
                              f"(no {FINAL}), first {unfinished[0]}; train the row first (train_run resumes it)")
    records, paths = [], []
    for folder, _ in runs:
        record = finished_record(folder, seed, tier, settings)
        if record is None:
            record = evaluate(folder / FINAL, dataset, seed=seed, tier=tier, name=model, progress=progress, **settings)
            write_record(record, folder / RECORD)
        paths.append(folder / RECORD)
        records.append(record)
    return aggregate_records(records, paths, Path(run_dir), [f"task {index}" for _, index in runs])


def finished_record(folder: Path, seed: int, tier: str | None, settings: dict) -> dict | None:
    """The task record in ``folder`` if an interrupted evaluation of the row already wrote it for this model file
    (written after it) with the same seed, tier and settings; else None (it is evaluated again)."""
    path, model_file = folder / RECORD, folder / FINAL
    if not path.is_file() or path.stat().st_mtime < model_file.stat().st_mtime:
        return None
    record = read_record(path)
    wanted = {k: settings.get(k, EVALUATE_DEFAULTS[k]) for k in REQUESTED}
    preset = settings.get("preset", EVALUATE_DEFAULTS["preset"])
    same = (record.get("settings") == requested_settings(**wanted) and record["seed"] == seed
            and record["tier"] == (tier or "custom") and record["preset"] == preset
            and record["model_source"]["path"] == str(model_file))
    return record if same else None


def evaluate_run(model_file: Path, model: str, dataset: str, seed: int, tier: str, *, progress: bool = False,
                 **settings) -> dict:
    """Score a trained row (what :func:`train_run` returned) with its tier's protocol (``settings`` override its
    evaluation settings, e.g. ``bootstrap_resamples=0``): one record, or for a mean-over-tasks model the mean record
    of its task runs."""
    protocol(tier)  # an unknown tier is an error here
    return evaluate_row(model_file, model, dataset, seed=seed, tier=tier, progress=progress,
                        **evaluation_settings(tier, **settings))


def evaluate_row(model_file: Path, model: str, dataset: str, *, seed: int, tier: str | None, progress: bool = False,
                 **settings) -> dict:
    """The record of one row with these evaluation ``settings``: :func:`evaluate` of ``model_file``, or for a
    mean-over-tasks model the mean record of its task runs (:func:`evaluate_tasks`)."""
    if mean_over_tasks(model):
        return evaluate_tasks(model_file, model, dataset, seed=seed, tier=tier, progress=progress, **settings)
    return evaluate(model_file, dataset, seed=seed, tier=tier, name=model, progress=progress, **settings)
