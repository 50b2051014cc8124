"""Training data: a seeded subset of a dataset's grid, split into train/test, preloaded as uint8.

The subset and split depend only on ``split_seed`` (not on the training seed), so every seed of a
model, and every model, sees the same train/test images:

    rng = np.random.default_rng(split_seed)
    grid = sorted(rng.choice(n_points, subset, replace=False))   # or all points when subset = 0
    order = rng.permutation(len(grid)); test = order[:n_test]; train = order[n_test:]

Images are held as one uint8 tensor (N, C, 64, 64) on the training device and converted to float
in [0, 1] per batch (divided by the dataset's ``pixel_max``: 1 for dSprites, else 255); task targets (raw, float32) sit beside them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from disentbench.models.base import Batch, chunks


def split_positions(n_points: int, subset: int, test_fraction: float, split_seed: int):
    """(grid indices (N,), train positions, test positions) for a seeded subset and split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if subset < 0:
        raise ValueError(f"subset must be >= 0 (0 = the whole grid), got {subset}")
    rng = np.random.default_rng(split_seed)
    if subset and subset < n_points:
        grid = np.sort(rng.choice(n_points, size=subset, replace=False))
    else:
        grid = np.arange(n_points, dtype=np.int64)
    n_test = max(1, int(round(test_fraction * len(grid))))
    if len(grid) - n_test < 2:
        raise ValueError(f"a subset of {len(grid)} images leaves fewer than 2 training images")
    order = rng.permutation(len(grid))
    return grid.astype(np.int64), np.sort(order[n_test:]), np.sort(order[:n_test])


def load_images(dataset, grid: np.ndarray, *, chunk: int = 8192, progress: bool = False) -> torch.Tensor:
    """uint8 tensor (N, C, 64, 64) of the dataset images at ``grid`` (read in chunks)."""
    from tqdm.auto import tqdm

    out = torch.empty((len(grid), dataset.channels, 64, 64), dtype=torch.uint8)
    bar = tqdm(total=len(grid), desc="loading images", unit="img", disable=not progress, leave=False)
    for start in range(0, len(grid), chunk):
        block = np.asarray(dataset.images(grid[start:start + chunk]))
        if block.dtype != np.uint8 or block.shape[1:3] != (64, 64) or block.shape[3] != dataset.channels:
            raise ValueError(f"dataset {dataset.name!r} returned images {block.dtype} {block.shape}, "
                             f"expected uint8 (n, 64, 64, {dataset.channels})")
        out[start:start + len(block)] = torch.from_numpy(block).permute(0, 3, 1, 2)
        bar.update(len(block))
    bar.close()
    return out


@dataclass
class RunData:
    """Preloaded images (uint8, on device), factor classes, optional task targets and upstream codes, and the
    train/test positions into them. :meth:`batch` builds the :class:`~disentbench.models.base.Batch` a model needs."""

    images: torch.Tensor
    grid: np.ndarray
    train: torch.Tensor
    test: torch.Tensor
    factors: torch.Tensor
    targets: torch.Tensor | None = None
    pixel_max: int = 255
    upstream: torch.Tensor | None = None

    def float_images(self, positions: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] (divided by the dataset's ``pixel_max``) for positions into the preloaded subset."""
        return self.images.index_select(0, positions).float().div_(float(self.pixel_max))

    def batch(self, positions: torch.Tensor, needs, **fields) -> Batch:
        """The :class:`Batch` of ``positions`` holding what ``needs`` names; ``fields`` (step, epoch, noise) pass on."""
        return Batch(
            images=self.float_images(positions) if "images" in needs else None,
            factors=self.factors[positions] if "factors" in needs else None,
            targets=self.targets[positions] if "targets" in needs else None,
            upstream=self.upstream[positions] if "upstream" in needs else None,
            **fields,
        )

    def batches(self, positions: torch.Tensor, needs) -> Iterator[Batch]:
        """Batches of ``positions`` in order, :data:`~disentbench.models.base.EVAL_BATCH` at a time (evaluation)."""
        for chunk in chunks(positions):
            yield self.batch(chunk, needs)


def load_run_data(dataset, data_spec: dict, device, *, task_set=None, progress: bool = False) -> RunData:
    """Subset, split and preload ``dataset`` as ``data_spec`` says; targets from ``task_set`` if given (one column,
    ``task_index``, when the spec names one)."""
    grid, train, test = split_positions(len(dataset), int(data_spec["subset"]), float(data_spec["test_fraction"]),
                                        int(data_spec["split_seed"]))
    images = load_images(dataset, grid, progress=progress).to(device)
    classes = dataset.factor_space.index_to_classes(grid)
    targets = None
    if task_set is not None:
        y = task_set.targets(classes)
        if "task_index" in data_spec:
            y = y[:, [int(data_spec["task_index"])]]
        targets = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(device)
    return RunData(images, grid, torch.from_numpy(train).to(device), torch.from_numpy(test).to(device),
                   torch.from_numpy(np.ascontiguousarray(classes, dtype=np.int64)).to(device), targets,
                   int(getattr(dataset, "pixel_max", 255)))


def _fingerprint(task_set) -> str:
    """Short hash of what defines a task set (options, seed, factor space, subsets, generator version)."""
    desc = task_set.describe()
    desc.pop("disentbench_version", None)
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]


def resolve_task_set(data_spec: dict, dataset, tasks_path=None):
    """The task set of a run (``--tasks`` file, or the dataset's default set: seed 0, ``n_tasks`` tasks) and a
    plain description of it for the run spec. A file made for another factor space is refused."""
    from disentbench.tasks import DEFAULT_N_TASKS, TaskSet, default_task_set

    if tasks_path is not None:
        task_set = TaskSet.load(tasks_path)
        if task_set.factor_space != dataset.factor_space:
            fs = task_set.factor_space
            raise ValueError(
                f"tasks file {tasks_path} was made for a different factor space "
                f"({dict(zip(fs.names, fs.sizes))}) than dataset {dataset.name!r} "
                f"({dict(zip(dataset.factor_space.names, dataset.factor_space.sizes))})"
            )
    else:
        task_set = default_task_set(dataset.factor_space, int(data_spec.get("n_tasks", DEFAULT_N_TASKS)))
    if "task_index" in data_spec and not 0 <= int(data_spec["task_index"]) < task_set.n_tasks:
        raise ValueError(f"task index {data_spec['task_index']} out of range for {task_set.n_tasks} tasks")
    info = {
        "file": None if tasks_path is None else str(tasks_path),
        "seed": task_set.seed,
        "n_tasks": task_set.n_tasks,
        "fingerprint": _fingerprint(task_set),
    }
    return task_set, info
