"""The one training loop. It knows no model by name.

``train(spec, out_dir)`` seeds everything, preloads the data the model declares it needs (images, factor classes,
task targets, codes of the frozen upstream run given by ``--from``), runs epochs of shuffled minibatches through
``model.train_step``, logs losses as JSON lines, writes checkpoints at intervals and at the end, stops on a NaN
loss, and resumes an interrupted run bit-for-bit: the model, **every** optimiser the model configured, the noise
generator (sampling, permutations), the global torch RNG and the position in the epoch are checkpointed, and the
data order of epoch ``e`` is ``randperm(n_train)`` from a generator seeded with ``seed * 1_000_003 + e``, so it is
recomputed rather than stored.

Run folder::

    config.json     the resolved run spec
    log.jsonl       {"step", "epoch", "loss", ...} every log_every_steps; {"event": "eval", ...} per epoch;
                    {"event": "metrics", ...} every metrics_every_steps (off by default; see training/monitor.py)
    checkpoint.pt   latest checkpoint (training state for --resume), replaced atomically
    model.pt        final checkpoint, written once training finished
    summary.json    final test metrics, steps, wall time, images/s
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from disentbench.checkpoint import FINAL_NAME, RESUME_NAME, load_checkpoint, save_model
from disentbench.fileio import atomic_write_text, remove_stale_temporaries
from disentbench.models import Model, ModelContext, NonFiniteLoss, build_model, get_model, load_model
from disentbench.models.base import encode_all
from disentbench.training.config import same_run
from disentbench.training.data import RunData, load_run_data, resolve_task_set
from disentbench.training.monitor import MetricMonitor

EPOCH_SEED_STRIDE = 1_000_003
NOISE_SEED_OFFSET = 7919
RUN_FILES = ("config.json", "log.jsonl", "summary.json", RESUME_NAME, FINAL_NAME)


class TrainingDiverged(RuntimeError):
    """Training stopped on a NaN/inf loss; ``checkpoint`` is the last good checkpoint (or None)."""


def setup_torch(seed: int, threads: int | None, device: str) -> torch.device:
    """Threads, deterministic algorithms, global seed; returns the device (refusing cuda when absent)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but torch.cuda.is_available() is False")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.set_num_threads(int(threads) if threads else torch.get_num_threads())
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    return dev


def epoch_order(seed: int, epoch: int, n: int, device) -> torch.Tensor:
    """Shuffled training positions of one epoch (CPU generator, so identical on every device)."""
    gen = torch.Generator().manual_seed(seed * EPOCH_SEED_STRIDE + epoch)
    return torch.randperm(n, generator=gen).to(device)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after ``step`` (work redone after a resume) so the log matches an uninterrupted run."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):  # a line torn by the interruption
            continue
    atomic_write_text(path, "".join(line + "\n" for line in keep))


@dataclass
class Run:
    """Everything a training run needs: the completed spec, the model, preloaded data, noise generator, dataset."""

    spec: dict
    model: Model
    data: RunData
    noise: torch.Generator
    dataset: object


def load_upstream(path, dataset, accepted: tuple[str, ...] = (), trained_on: str | None = None) -> tuple[Model, dict]:
    """The frozen model of the upstream run at ``path`` (``--from``), checked against the dataset (or the look-alike
    ``trained_on`` that the run's ``[data] upstream_dataset`` names, with the same factor sizes) and the registry
    models the staged model accepts (``accepted``; empty: any)."""
    if path is None:
        raise ValueError("this model trains on another run: pass --from RUN_DIR (the upstream run folder)")
    model, ckpt = load_model(path)
    if accepted and ckpt["model_name"] not in accepted:
        raise ValueError(f"upstream run {path} is a {ckpt['model_name']!r} run; this model trains on a "
                         f"{' or '.join(accepted)} run")
    if model.context.channels != dataset.channels:
        raise ValueError(f"upstream run {path} takes {model.context.channels}-channel images; "
                         f"dataset {dataset.name!r} has {dataset.channels}")
    expected, got = trained_on or dataset.name, ckpt["extra"].get("dataset", {}).get("name")
    if got and got != expected:
        raise ValueError(f"upstream run {path} was trained on {got!r}, not {expected!r}")
    sizes = model.context.factor_sizes
    if trained_on and sizes and tuple(sizes) != tuple(dataset.factor_space.sizes):
        raise ValueError(f"upstream run {path} was trained on factor sizes {list(sizes)}; dataset {dataset.name!r} "
                         f"has {list(dataset.factor_space.sizes)}: not a look-alike")
    return model, ckpt


def setup_run(spec: dict, *, dataset=None, tasks_path=None, upstream_path=None, progress: bool = False) -> Run:
    """Seed torch, open the dataset, resolve tasks / upstream run, build and initialise the model (seeded), preload
    the data it needs, configure its optimisers and prepare it. The returned spec is completed with the dataset
    version, task-set description and upstream run."""
    spec = json.loads(json.dumps(spec))  # plain-data copy
    info = get_model(spec["model"])
    needs = info.needs
    device = setup_torch(spec["seed"], spec.get("threads"), spec.get("device", "cpu"))
    if dataset is None:
        from disentbench.data import get_dataset

        dataset = get_dataset(spec["data"]["dataset"])
    spec["data"]["dataset"], spec["data"]["dataset_version"] = dataset.name, str(dataset.version)
    task_set = upstream = None
    if "targets" in needs:
        task_set, spec["data"]["tasks"] = resolve_task_set(spec["data"], dataset, tasks_path)
    elif tasks_path is not None:
        raise ValueError(f"--tasks applies to models trained on task targets, not {spec['model']!r}")
    if "upstream" in needs:
        upstream, ckpt = load_upstream(upstream_path, dataset, info.upstream, spec["data"].get("upstream_dataset"))
        spec["upstream"] = {"path": str(upstream_path), "model": ckpt["model_name"],
                            "dataset": ckpt["extra"].get("dataset", {}).get("name")}
    elif upstream_path is not None:
        raise ValueError(f"--from applies to models trained on another run, not {spec['model']!r}")
    n_tasks = None if task_set is None else (1 if "task_index" in spec["data"] else task_set.n_tasks)
    context = ModelContext(dataset.channels, n_tasks, tuple(dataset.factor_space.sizes), upstream)
    torch.manual_seed(spec["seed"])
    model = build_model(spec["model"], spec["config"], context)
    model.to(device).train()
    noise = torch.Generator(device=device).manual_seed(spec["seed"] + NOISE_SEED_OFFSET)
    data = load_run_data(dataset, spec["data"], device, task_set=task_set, progress=progress)
    if upstream is not None:
        data.upstream = encode_all(upstream, data.float_images, len(data.images), device)
    model.optimizers = model.configure_optimizers()
    model.prepare(data)
    return Run(spec, model, data, noise, dataset)


def _start_folder(out: Path, resume: bool) -> None:
    """Refuse to overwrite a run; clear what a run killed before its first checkpoint left (nothing resumable)."""
    ckpt_path, final_path = out / RESUME_NAME, out / FINAL_NAME
    if not resume and (ckpt_path.exists() or final_path.exists()):
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"nothing to resume: {ckpt_path} not found")
    for name in RUN_FILES:
        remove_stale_temporaries(out, name)
        if not resume and (out / name).exists():
            (out / name).unlink()


def train(spec: dict, out_dir, *, dataset=None, tasks_path=None, upstream_path=None, resume: bool = False,
          progress: bool | None = None, on_step: Callable[[int, Model], None] | None = None) -> dict:
    """Train the model of ``spec`` into ``out_dir``; returns the summary (also written to summary.json).

    ``dataset`` defaults to ``get_dataset(spec["data"]["dataset"])``. ``tasks_path``: a task set file (default:
    the dataset's default set). ``upstream_path``: the run (or checkpoint) a staged model trains on. Resuming a
    finished run changes nothing and returns its summary with ``already_complete`` set. ``on_step(step, model)``
    is called after every step (tests use it).
    """
    out = Path(out_dir)
    ckpt_path, final_path = out / RESUME_NAME, out / FINAL_NAME
    if resume and final_path.is_file() and (out / "summary.json").is_file():
        return {**json.loads((out / "summary.json").read_text()), "already_complete": True}
    _start_folder(out, resume)
    run = setup_run(spec, dataset=dataset, tasks_path=tasks_path, upstream_path=upstream_path,
                    progress=bool(progress))
    spec, model, data, noise, dataset = run.spec, run.model, run.data, run.noise, run.dataset
    step = epoch = batch = 0
    metrics: dict = {}
    if resume:
        resumed = load_checkpoint(ckpt_path)
        diff = same_run(resumed["extra"].get("run", {}), spec)
        if diff:
            raise ValueError(f"cannot resume {out}: the run was started with different settings ({', '.join(diff)})")
        state = resumed["extra"]["training"]
        model.load_state_dict(resumed["state_dict"])
        for name, opt in model.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        noise.set_state(state["noise_rng"])
        torch.set_rng_state(state["torch_rng"])
        step, epoch, batch, metrics = state["step"], state["epoch"], state["batch"], resumed["extra"].get("metrics", {})
        _truncate_log(out / "log.jsonl", step)
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(spec, indent=2, sort_keys=True))

    def save(path: Path, finished: bool) -> None:
        save_model(path, model, extra={
            "run": spec, "metrics": metrics,
            "dataset": {"name": dataset.name, "version": str(dataset.version), "channels": dataset.channels},
            "training": {"step": step, "epoch": epoch, "batch": batch, "finished": finished,
                         "optimizers": {n: o.state_dict() for n, o in model.optimizers.items()},
                         "noise_rng": noise.get_state().cpu(), "torch_rng": torch.get_rng_state()}})

    bs = spec["batch_size"]
    n_train = len(data.train)
    if spec["epochs"] and n_train < bs:
        raise ValueError(f"batch size {bs} exceeds the {n_train} training images of this tier")
    per_epoch = n_train // bs if spec["epochs"] else 0  # the last partial batch is dropped
    total = per_epoch * spec["epochs"]
    log_every, ckpt_every = spec["log_every_steps"], spec["checkpoint_every_steps"]
    start_step, t0 = step, time.perf_counter()
    needs = model.needs
    every = spec.get("metrics_every_steps") or 0
    monitor = MetricMonitor(dataset, seed=spec["seed"], device=data.train.device) if every else None

    from tqdm.auto import tqdm

    quiet = True if (progress is False or not total) else (None if progress is None else False)  # None: only on a TTY
    bar = tqdm(total=total, initial=step, desc=f"train {spec['model']}", unit="step", disable=quiet, dynamic_ncols=True)
    try:
        with open(out / "log.jsonl", "a") as log:
            while epoch < spec["epochs"]:
                model.on_epoch(epoch)
                order = epoch_order(spec["seed"], epoch, n_train, data.train.device)
                while batch < per_epoch:
                    positions = data.train[order[batch * bs:(batch + 1) * bs]]
                    try:
                        losses = model.train_step(data.batch(positions, needs, step=step, epoch=epoch, noise=noise))
                    except NonFiniteLoss as exc:
                        raise TrainingDiverged(_diverged_message(exc, step, epoch, ckpt_path)) from None
                    step, batch = step + 1, batch + 1
                    if step % log_every == 0 or batch == per_epoch:
                        rate = (step - start_step) * bs / max(time.perf_counter() - t0, 1e-9)
                        record = {"step": step, "epoch": epoch + 1, **{k: float(v) for k, v in losses.items()},
                                  "images_per_s": round(rate, 1)}
                        log.write(json.dumps(record) + "\n")
                        bar.set_postfix(loss=f"{record['loss']:.4g}", img_s=f"{rate:.0f}", refresh=False)
                    if monitor is not None and (step % every == 0 or step == total):
                        log.write(json.dumps({"event": "metrics", "step": step, "epoch": epoch + 1,
                                              **monitor(model)}) + "\n")
                    bar.update(1)
                    if batch == per_epoch:
                        epoch, batch = epoch + 1, 0
                        metrics = model.evaluate(data)
                        log.write(json.dumps({"event": "eval", "step": step, "epoch": epoch, **metrics}) + "\n")
                    if step % ckpt_every == 0 or batch == 0:
                        log.flush()
                        save(ckpt_path, finished=False)
                    if on_step is not None:
                        on_step(step, model)
                    if batch == 0:
                        break
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(f"interrupted at step {step}; the last checkpoint is {ckpt_path}") from exc
    finally:
        bar.close()
    if model.trainable and not metrics:
        metrics = model.evaluate(data)
    save(ckpt_path, finished=True)
    save(final_path, finished=True)
    elapsed = time.perf_counter() - t0
    summary = {
        "model": spec["model"], "dataset": dataset.name, "dataset_version": str(dataset.version), "seed": spec["seed"],
        "tier": spec["tier"], "representation": model.representation, "steps": step,
        "epochs": spec["epochs"], "train_images": n_train, "test_images": len(data.test),
        "images_per_s": round((step - start_step) * bs / elapsed, 1) if step > start_step else None,
        "wall_s": round(elapsed, 2), "metrics": metrics, "checkpoint": str(final_path),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _diverged_message(exc: Exception, step: int, epoch: int, ckpt_path: Path) -> str:
    text = f"training stopped at step {step + 1} (epoch {epoch + 1}): {exc}; that update was not applied. "
    if ckpt_path.exists():
        kept = load_checkpoint(ckpt_path)["extra"]["training"]["step"]
        return text + f"Last good checkpoint: {ckpt_path} (step {kept}); --resume would repeat the divergence."
    return text + "No checkpoint had been written yet."
