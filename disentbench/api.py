"""The Python API: one function per CLI command (``disentbench evaluate | train | generate-tasks | score | report``), with
the same defaults; the commands are thin wrappers of these. Heavy imports (torch, scikit-learn) happen inside."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np

    from disentbench.factors import FactorSpace
    from disentbench.metrics import MetricResult
    from disentbench.tasks import TaskSet


def evaluate(model: str | Path, dataset: str, *, tier: str | None = None, metrics: str | Sequence[str] | None = None,
             preset: str | None = None, seed: int = 0, n_points: int | None = None, tasks: str | Path | None = None,
             task_epochs: int | None = None, name: str | None = None, batch_size: int = 256, use_cache: bool = True,
             progress: bool = False, out: str | Path | None = None,
             representation: str | None = None, bootstrap: int | None = None,
             bootstrap_level: float | None = None) -> dict[str, Any]:
    """Score ``model`` (a checkpoint or run folder, an exported safetensors folder, a ``.pt2`` or TorchScript
    encoder, an ``.npz`` code file, or ``"ground-truth"``) on ``dataset``; returns the score record (a dict that
    matches the record schema). ``tier``: its protocol gives the defaults (so the record compares with that table);
    ``n_points=0``: the whole grid; ``out``: also write the record there; ``representation``: one of the model's
    named alternative representations instead of its default; ``bootstrap``: resamples of the bootstrap intervals
    (0: none) and ``bootstrap_level`` their level (default: the tier's, :mod:`disentbench.tiers`)."""
    from disentbench.evaluation import evaluate as evaluate_record
    from disentbench.evaluation import write_record
    from disentbench.tiers import evaluation_settings

    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    settings = evaluation_settings(tier, metrics=metrics, preset=preset, n_points=n_points, tasks=tasks,
                                   task_epochs=task_epochs, bootstrap_resamples=bootstrap,
                                   bootstrap_level=bootstrap_level)
    settings["n_points"] = settings["n_points"] or None
    record = evaluate_record(Path(model), dataset, seed=seed, tier=tier, name=name, **settings, batch_size=batch_size,
                             use_cache=use_cache, progress=progress, representation=representation)
    if out is not None:
        write_record(record, Path(out))
    return record


def train(model: str, dataset: str, out: str | Path, *, seed: int = 0, tier: str = "smoke",
          tasks: str | Path | None = None, upstream: str | Path | None = None, task_index: int | None = None,
          device: str = "cpu", threads: int | None = None, config: str | Path | None = None, resume: bool = False,
          progress: bool | None = False, metrics_every: int = 0) -> dict[str, Any]:
    """Train the registered ``model`` on ``dataset`` into the run folder ``out`` with its reference config (or the
    TOML ``config``) at ``tier``'s budget; staged models train on the run ``upstream``. ``metrics_every`` > 0 logs
    MIG and the fast DCI on a fixed grid sample every that many steps (:mod:`disentbench.training.monitor`).
    Returns the run summary."""
    from disentbench.training import load_reference, resolve_spec
    from disentbench.training import train as train_run

    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if metrics_every < 0:
        raise ValueError(f"metrics_every must be >= 0, got {metrics_every}")
    spec = resolve_spec(model, tier=tier, seed=seed, dataset=dataset, device=device, threads=threads,
                        reference=load_reference(model, config), task_index=task_index)
    if metrics_every:
        spec["metrics_every_steps"] = int(metrics_every)
    return train_run(spec, out, tasks_path=tasks, upstream_path=upstream, resume=resume, progress=progress)


def generate_tasks(dataset: "str | FactorSpace", n_tasks: int = 10, seed: int = 0, *, factors: str = "all",
                   hidden_width: int = 300, hidden_layers: int = 4, activation: str = "tanh",
                   out: str | Path | None = None, overwrite: bool = False, progress: bool = False) -> "TaskSet":
    """Random tanh-MLP regression tasks over the factors of ``dataset`` (a name or a
    :class:`~disentbench.factors.FactorSpace`), seed 004 sec. 3.1; ``out``: also write the HDF5 task file."""
    from disentbench.tasks import TaskSet

    if isinstance(dataset, str):
        from disentbench.data.registry import get_entry

        dataset = get_entry(dataset).factor_space()  # the grid only: official files need not be downloaded
    task_set = TaskSet.generate(dataset, n_tasks, seed, factors=factors, hidden_width=hidden_width,
                                hidden_layers=hidden_layers, activation=activation)
    if out is not None:
        task_set.save(Path(out), overwrite=overwrite, progress=progress)
    return task_set


def score(factors: "np.ndarray", codes: "np.ndarray", *, metrics: str | Sequence[str] = "default",
          preset: str = "reference", seed: int = 0, discrete: Sequence[bool] | None = None,
          overrides: dict[str, dict[str, Any]] | None = None) -> "dict[str, MetricResult]":
    """Score ``codes`` (n, d) against ``factors`` (n, k) with the metric engine: metric name -> result."""
    from disentbench.metrics import compute_metrics

    return compute_metrics(factors, codes, metrics, preset=preset, random_state=seed, discrete=discrete,
                           overrides=overrides)


def report(run: str | Path, *, dataset: str | None = None, out: str | Path | None = None,
           record: str | Path | None = None, decoder: str | Path | None = None, seed: int = 0,
           embeddings: Sequence[str] | None = None, progress: bool = False) -> dict[str, Any]:
    """Write the per-run report of the finished run folder ``run`` (traversals, reconstructions, embeddings,
    heatmaps, curves, the score record) as ``index.html`` with PNGs in ``out`` (default ``RUN/report``).
    ``record``: its score record (default ``RUN/record.json``); ``dataset``: checked against the record's;
    ``decoder``: a ``decoder-on-frozen`` run trained on this run; ``seed``: base image, samples, t-SNE;
    ``embeddings``: methods (default pca, tsne and umap when installed). Returns the ``report.json`` summary."""
    from disentbench.viz import build_report, load_run

    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    view = load_run(run, dataset=dataset, record=record, decoder_run=decoder, progress=progress)
    return build_report(view, Path(out) if out is not None else Path(run) / "report", seed=seed,
                        methods=list(embeddings) if embeddings else None)
