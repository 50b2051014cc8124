"""HDF5 files of task sets: atomic, bit-reproducible, self-describing.

Layout (``FORMAT`` version ``FORMAT_VERSION``)::

    /                        attrs: format, format_version, task_set (JSON of TaskSet.describe())
    /networks/task_000/W1 .. W{L+1}, b1 .. b{L+1}    float32 parameters (W1 has one row per seen factor)
    /targets                 float32 (n_grid, n_tasks), grid (row-major) order, chunked by rows
    /stats/{mean,std,linear_r2}   float64 (n_tasks,), over the full grid (see disentbench.tasks.stats)

Every dataset is created with ``track_times=False`` (h5py groups carry no times) and written in a fixed order, so the same task set
and chunk size give byte-identical files. h5py writes by path, so the file is written with
:func:`disentbench.fileio.atomic_write_path`: a temporary path in the target directory, moved into place
with :func:`os.replace`; on any error the temporary file is removed.

This module is the file format only: it knows a task set by the attributes it writes (``to_json()``,
``networks``, ``factor_space``, ``n_tasks``, ``iter_grid``); :mod:`disentbench.tasks.taskset` builds task sets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from disentbench.fileio import atomic_write_path
from disentbench.tasks.network import TaskNetwork
from disentbench.tasks.stats import TargetStatistics, TaskStatistics

FORMAT = "disentbench-tasks"
FORMAT_VERSION = 1
STATS_METHOD = "full grid; mean, population std, exact OLS R² of targets on [1, normalised factors]"


def write_task_file(
    task_set,
    path,
    *,
    chunk_size: int,
    overwrite: bool = False,
    grid: bool = True,
    threads: int | None = None,
    progress: bool = False,
) -> TaskStatistics | None:
    """Write ``task_set`` (and, with ``grid``, its targets on the full grid and their statistics).

    The grid is streamed in chunks of ``chunk_size`` rows (also the HDF5 chunk height) evaluated by
    ``threads`` workers. Refuses an existing ``path`` unless ``overwrite``. Returns the
    :class:`TaskStatistics` of the grid targets, or None without ``grid``.
    """
    path = Path(path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite / --overwrite to replace it)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output directory {path.parent} does not exist")
    with atomic_write_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["task_set"] = task_set.to_json()
        networks = f.create_group("networks")
        for i, net in enumerate(task_set.networks):
            g = networks.create_group(f"task_{i:03d}")
            for layer, (w, b) in enumerate(zip(net.weights, net.biases), start=1):
                g.create_dataset(f"W{layer}", data=w, track_times=False)
                g.create_dataset(f"b{layer}", data=b, track_times=False)
        return _write_grid(f, task_set, chunk_size, threads, progress) if grid else None


def _write_grid(f: h5py.File, task_set, chunk_size: int, threads: int | None, progress: bool) -> TaskStatistics:
    space = task_set.factor_space
    n, t = space.n_points, task_set.n_tasks
    targets = f.create_dataset(
        "targets", shape=(n, t), dtype=np.float32, chunks=(min(n, chunk_size), t), track_times=False
    )
    targets.attrs["order"] = "row-major grid index (FactorSpace.classes_to_index)"
    acc = TargetStatistics(space.n_factors, t)
    from tqdm import tqdm

    with tqdm(total=n, unit="pt", unit_scale=True, disable=not progress, desc="targets") as bar:
        for start, z, y in task_set.iter_grid(chunk_size, threads):
            targets[start : start + len(y)] = y
            acc.update(z, y)
            bar.update(len(y))
    stats = acc.result()
    group = f.create_group("stats")
    group.attrs["method"] = STATS_METHOD
    group.attrs["n_points"] = stats.n_points
    for name in ("mean", "std", "linear_r2"):
        group.create_dataset(name, data=getattr(stats, name), track_times=False)
    return stats


def _open(path) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task file {path} does not exist")
    f = h5py.File(path, "r")
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise ValueError(f"{path} is not a {FORMAT} file")
    if int(f.attrs["format_version"]) > FORMAT_VERSION:
        f.close()
        raise ValueError(f"{path} has format version {f.attrs['format_version']}, newer than {FORMAT_VERSION}")
    return f


def read_task_file(path) -> tuple[dict[str, Any], list[TaskNetwork]]:
    """The stored description (``TaskSet.describe()``) and networks of a task file."""
    with _open(path) as f:
        description = json.loads(f.attrs["task_set"])
        opts = description["options"]
        networks = []
        for i, subset in enumerate(description["subsets"]):
            g = f["networks"][f"task_{i:03d}"]
            layers = range(1, opts["hidden_layers"] + 2)
            networks.append(
                TaskNetwork(
                    tuple(subset),
                    tuple(g[f"W{layer}"][()] for layer in layers),
                    tuple(g[f"b{layer}"][()] for layer in layers),
                    opts["activation"],
                )
            )
    return description, networks


def load_targets(path) -> np.ndarray:
    """The grid targets float32 (n_grid, n_tasks) of a task file, in row-major grid order."""
    with _open(path) as f:
        if "targets" not in f:
            raise ValueError(f"{path} holds no grid targets (saved with grid=False)")
        return f["targets"][()]


def load_statistics(path) -> TaskStatistics:
    """The per-task grid statistics stored in a task file."""
    with _open(path) as f:
        if "stats" not in f:
            raise ValueError(f"{path} holds no statistics (saved with grid=False)")
        g = f["stats"]
        return TaskStatistics(int(g.attrs["n_points"]), g["mean"][()], g["std"][()], g["linear_r2"][()])
