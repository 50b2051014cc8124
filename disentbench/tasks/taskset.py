"""Task sets: n random-network regression tasks over the factors of one factor space.

Seed 004, section 3.1 and appendix H (see :mod:`disentbench.tasks.network` for the network). The
choices the paper leaves open, fixed here and recorded in every saved task set:

* inputs: each factor normalised to [0, 1] as ``class / (size − 1)`` (:meth:`FactorSpace.normalised`;
  0 for a single-valued factor), in float32;
* biases are drawn from N(0, 1) like the weights;
* task ``i`` (0-based) uses ``SeedSequence(seed).spawn(n_tasks)[i]``, i.e. ``SeedSequence(seed,
  spawn_key=(i,))``, whose two children (spawn keys ``(i, 0)`` and ``(i, 1)``) seed its parameters and
  its factor subset; task ``i`` is therefore the same whatever ``n_tasks`` is;
* factor subsets: ``all``; ``random-subset`` — uniform over the non-empty subsets (draw one fair bit
  per factor, redraw while all bits are 0); ``halves`` — with ``K`` factors the first half is the
  first ``ceil(K / 2)`` factors and the second half the rest; 1-based odd tasks (0-based even ``i``)
  see the first half, even tasks the second (needs ``K >= 2``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np

from disentbench import __version__
from disentbench.factors import FactorSpace
from disentbench.tasks.io import read_task_file, write_task_file
from disentbench.tasks.network import ACTIVATIONS, TaskNetwork
from disentbench.tasks.stats import TaskStatistics

#: Bump whenever the same options could produce different parameters or targets.
GENERATOR_VERSION = 1
FACTOR_MODES = ("all", "random-subset", "halves")
NORMALISATION = "unit-interval: class / (size - 1), 0 for single-valued factors"
SEED_DERIVATION = "task i: SeedSequence(seed, spawn_key=(i,)); parameters spawn_key (i, 0), subset spawn_key (i, 1)"
DEFAULT_CHUNK_SIZE = 16384
#: the default task set of a dataset: what the task models train on and what the downstream protocol scores
DEFAULT_N_TASKS = 10
DEFAULT_TASK_SEED = 0
#: Rows are evaluated in blocks padded (with zeros) to a multiple of this: BLAS kernels treat the
#: remainder rows of a block with other code paths whose float32 sums can differ in the last bit, so
#: padding makes every target independent of the chunk size and of the rows it is evaluated with.
ROW_BLOCK = 64


def _available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _task_seeds(seed: int, task: int) -> list[np.random.SeedSequence]:
    """[parameter seed, subset seed] of task ``task``: ``SeedSequence(seed).spawn(n)[task].spawn(2)``."""
    return np.random.SeedSequence(seed, spawn_key=(task,)).spawn(2)


def _subsets(space: FactorSpace, n_tasks: int, seed: int, factors) -> tuple[str, list[tuple[int, ...]]]:
    """Resolve the ``factors`` option to (mode name, one sorted factor-index tuple per task)."""
    k = space.n_factors
    if isinstance(factors, str):
        if factors == "all":
            return factors, [tuple(range(k))] * n_tasks
        if factors == "halves":
            if k < 2:
                raise ValueError(f"'halves' needs at least 2 factors (the second half would be empty), got {k}")
            first = math.ceil(k / 2)
            halves = (tuple(range(first)), tuple(range(first, k)))
            return factors, [halves[i % 2] for i in range(n_tasks)]
        if factors == "random-subset":
            subsets = []
            for i in range(n_tasks):
                rng = np.random.Generator(np.random.PCG64(_task_seeds(seed, i)[1]))
                bits = np.zeros(k, dtype=bool)
                while not bits.any():
                    bits = rng.integers(0, 2, size=k).astype(bool)
                subsets.append(tuple(int(j) for j in np.flatnonzero(bits)))
            return factors, subsets
        raise ValueError(f"unknown factor mode {factors!r}; choose from {list(FACTOR_MODES)} or give explicit subsets")
    subsets = [tuple(s) for s in factors]
    if len(subsets) != n_tasks:
        raise ValueError(f"got {len(subsets)} factor subsets for {n_tasks} tasks")
    resolved = []
    for i, subset in enumerate(subsets):
        if not subset:
            raise ValueError(f"task {i} has an empty factor subset; every task must see at least one factor")
        idx = sorted({space.index_of(f) if isinstance(f, str) else int(f) for f in subset})
        if idx[0] < 0 or idx[-1] >= k:
            raise ValueError(f"task {i}: factor index out of range for {k} factors: {list(subset)}")
        resolved.append(tuple(idx))
    return "custom", resolved


class TaskSet:
    """Random-network regression tasks y_i = h(z; θ_i) for one factor space (seed 004, sec. 3.1, app. H).

    Build with :meth:`generate`; evaluate with :meth:`evaluate` (normalised factor values, any real
    numbers) or :meth:`targets` (factor classes); persist with :meth:`save` / :meth:`load`.
    """

    def __init__(
        self,
        factor_space: FactorSpace,
        networks: Sequence[TaskNetwork],
        *,
        seed: int,
        factors: str,
        generator_version: int = GENERATOR_VERSION,
    ) -> None:
        if not networks:
            raise ValueError("a task set needs at least one task")
        shapes = {(len(n.weights), n.hidden_width, n.activation) for n in networks}
        if len(shapes) != 1:
            raise ValueError("all tasks of a set must share depth, width and activation")
        if any(n.subset[-1] >= factor_space.n_factors for n in networks):
            raise ValueError("a task sees a factor the factor space does not have")
        self.factor_space = factor_space
        self.networks = tuple(networks)
        self.seed = int(seed)
        self.factors = factors
        self.generator_version = int(generator_version)

    @classmethod
    def generate(
        cls,
        factor_space: FactorSpace,
        n_tasks: int = 10,
        seed: int = 0,
        *,
        factors: str | Sequence[Sequence[int | str]] = "all",
        hidden_width: int = 300,
        hidden_layers: int = 4,
        activation: str = "tanh",
    ) -> "TaskSet":
        """Draw ``n_tasks`` tasks. ``factors``: ``all``, ``random-subset``, ``halves`` or one subset
        (factor indices or names) per task. Defaults follow seed 004: 4 hidden layers of 300, tanh."""
        if isinstance(n_tasks, bool) or not isinstance(n_tasks, (int, np.integer)) or n_tasks < 1:
            raise ValueError(f"n_tasks must be a positive integer, got {n_tasks!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if hidden_width < 1 or hidden_layers < 1:
            raise ValueError(f"need hidden_width >= 1 and hidden_layers >= 1, got {hidden_width}, {hidden_layers}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        mode, subsets = _subsets(factor_space, int(n_tasks), int(seed), factors)
        networks = [
            TaskNetwork.draw(
                _task_seeds(int(seed), i)[0], factor_space.n_factors, subset, hidden_width, hidden_layers, activation
            )
            for i, subset in enumerate(subsets)
        ]
        return cls(factor_space, networks, seed=int(seed), factors=mode)

    # -- description ------------------------------------------------------------------------
    @property
    def n_tasks(self) -> int:
        return len(self.networks)

    @property
    def subsets(self) -> tuple[tuple[int, ...], ...]:
        return tuple(n.subset for n in self.networks)

    @property
    def hidden_width(self) -> int:
        return self.networks[0].hidden_width

    @property
    def hidden_layers(self) -> int:
        return len(self.networks[0].weights) - 1

    @property
    def activation(self) -> str:
        return self.networks[0].activation

    def subset_names(self, task: int) -> list[str]:
        return [self.factor_space.names[k] for k in self.networks[task].subset]

    def describe(self) -> dict:
        """Everything needed to regenerate the set, as a JSON-compatible dict."""
        return {
            "generator_version": self.generator_version,
            "disentbench_version": __version__,
            "seed": self.seed,
            "options": {
                "n_tasks": self.n_tasks,
                "factors": self.factors,
                "hidden_width": self.hidden_width,
                "hidden_layers": self.hidden_layers,
                "activation": self.activation,
            },
            "normalisation": NORMALISATION,
            "parameter_distribution": "every weight and bias ~ N(0, 1), float64 draws rounded to float32",
            "seed_derivation": SEED_DERIVATION,
            "factor_space": self.factor_space.to_dict(),
            "subsets": [list(s) for s in self.subsets],
        }

    @classmethod
    def from_description(cls, description: dict) -> "TaskSet":
        """Regenerate a set from :meth:`describe` output with this generator version."""
        opts = description["options"]
        factors = opts["factors"] if opts["factors"] != "custom" else description["subsets"]
        return cls.generate(
            FactorSpace.from_dict(description["factor_space"]),
            opts["n_tasks"],
            description["seed"],
            factors=factors,
            hidden_width=opts["hidden_width"],
            hidden_layers=opts["hidden_layers"],
            activation=opts["activation"],
        )

    def same_parameters(self, other: "TaskSet") -> bool:
        """True when both sets have the same factor space, subsets and bit-identical parameters."""
        return (
            self.factor_space == other.factor_space
            and self.n_tasks == other.n_tasks
            and all(
                a.subset == b.subset
                and a.activation == b.activation
                and len(a.weights) == len(b.weights)
                and all(np.array_equal(x, y) for x, y in zip(a.weights + a.biases, b.weights + b.biases))
                for a, b in zip(self.networks, other.networks)
            )
        )

    def __repr__(self) -> str:
        return (
            f"<TaskSet v{self.generator_version}: {self.n_tasks} tasks, seed {self.seed}, factors {self.factors}, "
            f"{self.hidden_layers}x{self.hidden_width} {self.activation}, factors {list(self.factor_space.names)}>"
        )

    # -- evaluation -------------------------------------------------------------------------
    @contextmanager
    def _engine(self, rows: int, threads: int | None) -> Iterator[Callable[[np.ndarray, np.ndarray], None]]:
        """A function ``(z32, out)`` writing all task outputs for one chunk of at most ``rows`` rows.

        BLAS runs single-threaded (while the engine is open, for the whole process) and each of the
        ``threads`` workers evaluates every ``threads``-th task: fewer synchronisation stalls than
        multi-threaded BLAS on a small, shared machine, and the element-wise activations run in
        parallel too. The results do not depend on the thread count.
        """
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be positive, got {threads}")
        workers = max(1, min(threads or _available_cpus(), self.n_tasks))
        padded_rows = -(-rows // ROW_BLOCK) * ROW_BLOCK
        buffers = [tuple(np.empty((padded_rows, self.hidden_width), np.float32) for _ in range(2))
                   for _ in range(workers)]

        def run_tasks(worker: int, z32: np.ndarray, out: np.ndarray) -> None:
            for t in range(worker, self.n_tasks, workers):
                out[:, t] = self.networks[t].forward(z32, buffers[worker])[: out.shape[0]]

        def pad(z32: np.ndarray) -> np.ndarray:
            extra = -z32.shape[0] % ROW_BLOCK
            return np.concatenate([z32, np.zeros((extra, z32.shape[1]), np.float32)]) if extra else z32

        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            if workers == 1:
                yield lambda z32, out: run_tasks(0, pad(z32), out)
                return
            with ThreadPoolExecutor(workers) as pool:

                def run(z32: np.ndarray, out: np.ndarray) -> None:
                    z32 = pad(z32)
                    for job in [pool.submit(run_tasks, w, z32, out) for w in range(workers)]:
                        job.result()

                yield run

    def evaluate(
        self, z: np.ndarray, *, chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None
    ) -> np.ndarray:
        """Targets float32 (n, n_tasks) for normalised factor values ``z`` (n, n_factors).

        ``z[:, k]`` is on the scale of ``class / (size_k − 1)``; any finite value (off-grid,
        outside [0, 1]) is accepted. Computed in chunks of ``chunk_size`` rows with ``threads``
        workers (default: the CPUs this process may use).
        """
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.factor_space.n_factors:
            raise ValueError(f"factor values must have shape (n, {self.factor_space.n_factors}), got {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError("factor values must be finite")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        z32 = z.astype(np.float32)
        out = np.empty((z.shape[0], self.n_tasks), np.float32)
        with self._engine(min(chunk_size, max(z.shape[0], 1)), threads) as forward:
            for start in range(0, z.shape[0], chunk_size):
                stop = min(start + chunk_size, z.shape[0])
                forward(z32[start:stop], out[start:stop])
        return out

    def targets(
        self, classes: np.ndarray, *, chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None
    ) -> np.ndarray:
        """Targets float32 (n, n_tasks) for factor classes (n, n_factors) of :attr:`factor_space`."""
        return self.evaluate(self.factor_space.normalised(classes), chunk_size=chunk_size, threads=threads)

    def iter_grid(
        self, chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Stream the full factor grid in row-major order: ``(start, z, targets)`` per chunk, with ``z``
        the normalised factors (float64) and ``targets`` float32; memory O(threads · chunk_size · width)."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        space = self.factor_space
        with self._engine(min(chunk_size, space.n_points), threads) as forward:
            for start in range(0, space.n_points, chunk_size):
                stop = min(start + chunk_size, space.n_points)
                z = space.normalised(space.index_to_classes(np.arange(start, stop)))
                out = np.empty((stop - start, self.n_tasks), np.float32)
                forward(z.astype(np.float32), out)
                yield start, z, out

    # -- persistence ------------------------------------------------------------------------
    def save(
        self,
        path,
        *,
        overwrite: bool = False,
        grid: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int | None = None,
        progress: bool = False,
    ) -> TaskStatistics | None:
        """Write the set to HDF5 (and, with ``grid``, its targets on the full grid streamed in chunks of
        ``chunk_size`` rows, and their statistics, which are returned); see :func:`disentbench.tasks.io.write_task_file`."""
        return write_task_file(self, path, overwrite=overwrite, grid=grid, chunk_size=chunk_size, threads=threads,
                               progress=progress)

    @classmethod
    def load(cls, path, *, verify: bool = True) -> "TaskSet":
        """Read a set written by :meth:`save` (see :func:`load_task_set`)."""
        return load_task_set(path, verify=verify)

    def to_json(self) -> str:
        return json.dumps(self.describe(), sort_keys=True)


def default_task_set(space: FactorSpace, n_tasks: int = DEFAULT_N_TASKS) -> TaskSet:
    """The dataset's default task set (seed 004 sec. 3.1: ``n_tasks`` tasks over all factors, seed 0)."""
    return TaskSet.generate(space, n_tasks, DEFAULT_TASK_SEED)


def load_task_set(path, *, verify: bool = True) -> TaskSet:
    """Read a task set from its stored parameters.

    With ``verify``, the set is also regenerated from its recorded seed and options and compared with
    the stored parameters; a mismatch (another generator version, or a NumPy whose random streams
    changed) is reported as a :class:`RuntimeWarning` and the stored parameters are used.
    """
    description, networks = read_task_file(path)
    task_set = TaskSet(
        FactorSpace.from_dict(description["factor_space"]),
        networks,
        seed=description["seed"],
        factors=description["options"]["factors"],
        generator_version=description["generator_version"],
    )
    if verify:
        if task_set.generator_version != GENERATOR_VERSION:
            warnings.warn(
                f"{path} was made by task generator version {task_set.generator_version}, this is version "
                f"{GENERATOR_VERSION}; using the stored parameters",
                RuntimeWarning,
                stacklevel=2,
            )
        elif not task_set.same_parameters(TaskSet.from_description(description)):
            warnings.warn(
                f"the parameters stored in {path} differ from those regenerated from its seed and options "
                "(NumPy random streams changed?); using the stored parameters",
                RuntimeWarning,
                stacklevel=2,
            )
    return task_set
