"""Model + dataset -> code table (cached) -> metrics -> score record.

``evaluate`` accepts three kinds of model file, and one pseudo-model:

* a disentbench checkpoint (rebuilt from its config, loaded with ``weights_only=True``);
* a TorchScript encoder: float images in [0, 1], shape (B, C, 64, 64) -> codes (B, d);
* a precomputed code file: ``.npz`` with ``codes`` (n, d) and ``indices`` (n,) into the dataset's
  factor grid (optional string fields ``dataset`` and ``dataset_version`` are checked);
* ``ground-truth``: the codes are the factors themselves, normalised to [0, 1] (the task networks' inputs) —
  the upper anchor of every metric and the "ground truth" row of seed 004's Table 1.

For a model, a seeded sample of grid indices (``n_points`` drawn without replacement, the whole grid
when it is smaller) is encoded in batches with bounded memory. Interventional metrics (FactorVAE,
BetaVAE) group rows of this table that share a factor value, so one code table serves every metric.
Codes are cached under ``<cache>/codes/`` keyed by (model file SHA-256, dataset name + version,
SHA-256 of the indices). Scores come from :func:`disentbench.metrics.compute_metrics` on the factor
classes and codes.

Optional multi-task protocol (seed 004, sec. 4.3 / Table 1): task heads trained on the frozen codes
against a task file or the dataset's default task set; the mean test RMSE is the score ``multitask.rmse``,
the per-task RMSEs go to the record's ``tasks`` entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

#: default number of grid points encoded: enough for the reference settings (DCI / SAP: 10,000 train +
#: 5,000 test; MIG, FactorVAE variance, BetaVAE, modularity: 10,000)
DEFAULT_N_POINTS = 15_000
DEFAULT_BATCH_SIZE = 256
RECORD_FORMAT = "disentbench-score-record"
RECORD_FORMAT_VERSION = 1
#: the pseudo-model whose codes are the normalised ground-truth factors
GROUND_TRUTH = "ground-truth"
#: ``tasks=DEFAULT_TASKS``: the dataset's default task set (what the task models train on)
DEFAULT_TASKS = "default"


class EvaluationError(ValueError):
    """A model file, code file or dataset that cannot be evaluated; the message says why."""


# -- hashing and provenance ---------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(config: dict) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of a model config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str:
    """``git rev-parse HEAD`` of the source checkout (``-dirty`` if the package has uncommitted changes), else ``unknown``."""
    repo = Path(__file__).resolve().parents[1]
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


def cache_dir() -> Path:
    """``$DISENTBENCH_CACHE`` if set, else the user cache directory (platformdirs)."""
    env = os.environ.get("DISENTBENCH_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("disentbench"))


# -- model sources ------------------------------------------------------------------------------
@dataclass
class ModelSource:
    """A model file opened for evaluation.

    ``kind`` is ``checkpoint``, ``torchscript`` or ``codes``; ``encoder`` maps float images in [0, 1]
    (B, C, 64, 64) to codes (B, d) (None for code files); ``info`` holds what the loader reported.
    """

    path: Path
    kind: str
    sha256: str
    model_type: str
    config_hash: str
    encoder: Callable[[np.ndarray], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _is_npz(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return bool(names) and all(n.endswith(".npy") for n in names)


def open_model(path: Path) -> ModelSource:
    """Open a checkpoint, TorchScript encoder or code file (or the ``ground-truth`` pseudo-model); raise a
    clear error for anything else."""
    path = Path(path)
    if str(path) == GROUND_TRUTH and not path.exists():
        return ModelSource(path, GROUND_TRUTH, hashlib.sha256(GROUND_TRUTH.encode()).hexdigest(), GROUND_TRUTH, "",
                           info={"representation": "normalised factors"})
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    sha = file_sha256(path)
    if _is_npz(path):
        return ModelSource(path, "codes", sha, "codes", sha[:16])
    from disentbench.models import load_encoder

    encoder, info = load_encoder(path)
    if info["source"] == "torchscript":
        return ModelSource(path, "torchscript", sha, "torchscript", sha[:16], encoder, info)
    chash = info.get("config_hash") or config_hash(info["config"])
    return ModelSource(path, "checkpoint", sha, info["model_name"], chash, encoder, info)


# -- sampling, encoding, caching ----------------------------------------------------------------
def sample_indices(n_grid: int, n_points: int | None, seed: int) -> np.ndarray:
    """Sorted grid indices: the whole grid if ``n_points`` is None or >= ``n_grid``, else a seeded draw without replacement."""
    if n_points is not None and n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    if n_points is None or n_points >= n_grid:
        return np.arange(n_grid, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_grid, size=n_points, replace=False)).astype(np.int64)


def unit_images(images: np.ndarray, dataset) -> np.ndarray:
    """uint8 (n, H, W, C) -> float32 (n, C, H, W) in [0, 1], dividing by the dataset's ``pixel_max``
    (1 for the binary dSprites images, 255 otherwise)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(dataset.pixel_max)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def encode(
    encoder: Callable[[np.ndarray], Any],
    dataset,
    indices: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> np.ndarray:
    """Codes float32 (n, d) for grid ``indices``, encoded in batches (memory: one batch of images)."""
    from tqdm import tqdm

    codes: np.ndarray | None = None
    n = len(indices)
    with tqdm(total=n, desc=f"encoding {dataset.name}", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            batch = indices[start : start + batch_size]
            out = encoder(unit_images(dataset.images(batch), dataset))
            out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
            if out.ndim != 2 or out.shape[0] != len(batch):
                raise EvaluationError(
                    f"the encoder returned shape {tuple(out.shape)} for a batch of {len(batch)} images "
                    f"(input shape ({len(batch)}, {dataset.channels}, 64, 64)); expected ({len(batch)}, d)"
                )
            if codes is None:
                codes = np.empty((n, out.shape[1]), dtype=np.float32)
            elif out.shape[1] != codes.shape[1]:
                raise EvaluationError(f"the encoder's code width changed from {codes.shape[1]} to {out.shape[1]}")
            codes[start : start + len(batch)] = out
            bar.update(len(batch))
    assert codes is not None
    return codes


def check_codes(codes: np.ndarray, what: str) -> np.ndarray:
    """Raise :class:`EvaluationError` for codes that are not a finite 2-D numeric array."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] == 0 or not np.issubdtype(codes.dtype, np.number):
        raise EvaluationError(f"{what}: codes must be a numeric (n, d) array, got shape {codes.shape}, dtype {codes.dtype}")
    bad = ~np.isfinite(codes)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise EvaluationError(
            f"{what}: {int(bad.sum())} code values are NaN or infinite (first at row {rows[0]}, dimension {cols[0]}; "
            f"dimensions affected: {sorted(set(cols.tolist()))[:10]}); the model diverged or the file is corrupt"
        )
    return codes


#: a code dimension whose spread is below this fraction of its magnitude is reported as collapsed
COLLAPSE_RATIO = 1e-3


def collapsed_dimensions(codes: np.ndarray) -> list[int]:
    """Dimensions j with std_j ≤ COLLAPSE_RATIO · (|mean_j| + std_j): constant up to numerical noise, whatever
    the scale (a collapsed or saturated encoder). Histogram metrics, being scale-invariant, still read them."""
    codes = np.asarray(codes, dtype=np.float64)
    std, mean = codes.std(axis=0), np.abs(codes.mean(axis=0))
    return [int(j) for j in np.nonzero(std <= COLLAPSE_RATIO * (mean + std))[0]]


def _indices_hash(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


def codes_cache_path(source: ModelSource, dataset, indices: np.ndarray, root: Path | None = None) -> Path:
    key = json.dumps([source.sha256, dataset.name, dataset.version, _indices_hash(indices)])
    return Path(root or cache_dir()) / "codes" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def cached_codes(
    source: ModelSource,
    dataset,
    indices: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    use_cache: bool = True,
    root: Path | None = None,
) -> tuple[np.ndarray, bool]:
    """Codes for ``indices`` from the cache or by encoding (then cached). Returns ``(codes, from_cache)``."""
    path = codes_cache_path(source, dataset, indices, root)
    if use_cache and path.exists():
        try:
            with np.load(path) as data:
                if np.array_equal(data["indices"], indices):
                    return check_codes(data["codes"], f"cached codes {path}"), True
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: re-encode and overwrite it
    codes = check_codes(encode(source.encoder, dataset, indices, batch_size=batch_size, progress=progress), str(source.path))
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, codes=codes, indices=indices)
        os.replace(tmp, path)
    return codes, False


def load_code_file(path: Path, dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, indices)`` from a code file, checked against ``dataset``."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: not a readable .npz code file ({exc})") from None
    with data:
        missing = [k for k in ("codes", "indices") if k not in data.files]
        if missing:
            raise EvaluationError(f"{path}: a code file needs arrays 'codes' and 'indices'; missing {missing} (has {data.files})")
        for key, expected in (("dataset", dataset.name), ("dataset_version", dataset.version)):
            if key in data.files:
                value = str(data[key])
                if value != expected:
                    raise EvaluationError(
                        f"{path}: code file is for {key} {value!r} but you asked to evaluate on {expected!r}"
                    )
        codes, indices = data["codes"], data["indices"]
    codes = check_codes(codes, str(path))
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise EvaluationError(f"{path}: 'indices' must be a 1-D integer array, got shape {indices.shape}, dtype {indices.dtype}")
    if len(indices) != len(codes):
        raise EvaluationError(f"{path}: {len(codes)} code rows but {len(indices)} indices")
    n_grid = dataset.factor_space.n_points
    if len(indices) and (indices.min() < 0 or indices.max() >= n_grid):
        raise EvaluationError(
            f"{path}: indices range over [{indices.min()}, {indices.max()}] but {dataset.name} has {n_grid} grid points; "
            "is this a code file for another dataset?"
        )
    if len(np.unique(indices)) != len(indices):
        raise EvaluationError(f"{path}: 'indices' has repeated grid points")
    return codes.astype(np.float32, copy=False), indices.astype(np.int64)


# -- multi-task protocol ------------------------------------------------------------------------
def multitask_rmse(
    codes: np.ndarray,
    targets: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-4,
    test_fraction: float = 0.2,
    hidden: Sequence[int] = (300, 300, 300),
    activation: str = "tanh",
) -> np.ndarray:
    """Per-task test RMSE of multi-task heads trained on frozen codes (seed 004, sec. 4.3, Table 1; app. C.3:
    the Table-3 heads with tanh, 30 epochs, batch 64, Adam lr 1e-4). One head per task; loss = sum of task
    MSEs; RMSE_t = sqrt(mean_test (ŷ_t − y_t)²) on a seeded held-out split."""
    import torch

    from disentbench.models.heads import TaskHeads

    n = len(codes)
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 1:
        raise EvaluationError(f"too few points ({n}) for a train/test split of the multi-task protocol")
    perm = np.random.default_rng(seed).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    x = torch.as_tensor(codes, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = TaskHeads(codes.shape[1], targets.shape[1], "multi", tuple(hidden), activation)
    opt = torch.optim.Adam(heads.parameters(), lr=lr, betas=(0.9, 0.999))
    train_t = torch.as_tensor(train)
    for _ in range(epochs):
        order = train_t[torch.randperm(len(train_t), generator=gen)]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = ((heads(x[idx]) - y[idx]) ** 2).mean(dim=0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        err = heads(x[test]) - y[test]
        rmse = torch.sqrt((err**2).mean(dim=0)).double().numpy()
    return rmse


def resolve_tasks(tasks: Path | str | None, dataset) -> tuple[Any, dict[str, Any]] | None:
    """The task set of the multi-task protocol (a task file, or ``"default"``: the dataset's default set)
    and its description for the record; None without tasks. A file for another factor space is refused."""
    from disentbench.tasks import TaskSet, default_task_set

    if tasks is None:
        return None
    if str(tasks) == DEFAULT_TASKS and not Path(tasks).exists():
        taskset = default_task_set(dataset.factor_space)
        return taskset, {"file": None, "default": True, "seed": taskset.seed, "n_tasks": taskset.n_tasks}
    taskset = TaskSet.load(tasks)
    if taskset.factor_space != dataset.factor_space:
        raise EvaluationError(f"{tasks}: the task file was generated for another factor space than {dataset.name}'s")
    return taskset, {"file": str(tasks), "sha256": file_sha256(Path(tasks)), "seed": taskset.seed, "n_tasks": taskset.n_tasks}


# -- the evaluation ---------------------------------------------------------------------------
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
) -> dict[str, Any]:
    """Evaluate a model file (or ``ground-truth``) on a dataset and return the score record (a JSON-ready
    dict). ``tasks``: a task file or ``"default"`` adds the multi-task protocol."""
    from disentbench import __version__
    from disentbench import metrics as metric_engine
    from disentbench.leaderboard import LEADERBOARD_VERSION

    start = time.perf_counter()
    if dataset is None:
        from disentbench.data import get_dataset

        dataset = get_dataset(dataset_name)
    space = dataset.factor_space
    source = open_model(model)
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
        scores["multitask.rmse"] = float(rmse.mean())
        task_info.update(epochs=task_epochs, rmse_per_task=[float(v) for v in rmse])
    tier = tier or "custom"
    model_name = name or (source.model_type if source.kind == "checkpoint" else source.path.stem)
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
        "metric_details": {k: r.to_dict() for k, r in results.items()},
        "tasks": task_info,
        "disentbench_version": __version__,
        "metric_definitions_version": metric_engine.METRIC_DEFINITIONS_VERSION,
        "leaderboard_version": LEADERBOARD_VERSION,
        "commit": git_commit(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "warnings": warnings,
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    return record


def write_record(record: dict[str, Any], path: Path) -> Path:
    """Write a score record as JSON atomically."""
    from disentbench.leaderboard import atomic_write_text

    atomic_write_text(Path(path), json.dumps(record, indent=2, sort_keys=False) + "\n")
    return Path(path)


def format_record(
    record: dict[str, Any], reference_rows: Sequence[dict[str, str]] = (), *, keys: Sequence[str] | None = None
) -> str:
    """A readable terminal table of a record's scores (with leaderboard rows beside it when given)."""
    from disentbench.leaderboard import ordered_metrics

    if keys is None:
        keys = ordered_metrics(record["metrics"])
    head = (
        f"{record['model']} on {record['dataset']} v{record['dataset_version']} — tier {record['tier']}, "
        f"seed {record['seed']}, preset {record['preset']}, {record['n_points']} points, code dim {record['code_dim']}"
    )
    names = ["this run", *[f"{r['model']} s{r['seed']}" for r in reference_rows]]
    width = max(len(k) for k in keys) + 2
    col = max(10, *(len(n) + 2 for n in names))
    lines = [head, "metric".ljust(width) + "".join(n.rjust(col) for n in names)]
    for key in keys:
        cells = [f"{record['metrics'][key]:.4f}"]
        for row in reference_rows:
            cells.append(f"{float(row[key]):.4f}" if row.get(key) else "–")
        lines.append(key.ljust(width) + "".join(c.rjust(col) for c in cells))
    lines += [f"warning: {w}" for w in record.get("warnings", [])]
    return "\n".join(lines)


# -- tiers: training + evaluation protocols, CI regression -------------------------------------
#: how a tier's leaderboard rows are evaluated (the smoke tier uses the ``fast`` preset: the reference
#: DCI with 100-stage boosted trees per factor takes over 10 minutes per model on two CPU cores). Both add
#: the multi-task protocol on the default task set (seed 004 Table 1: 30 epochs; smoke: 10, ~1,900 steps).
TIER_PROTOCOLS: dict[str, dict[str, Any]] = {
    "smoke": {"metrics": "default", "preset": "fast", "n_points": DEFAULT_N_POINTS, "threads": 2,
              "tasks": DEFAULT_TASKS, "task_epochs": 10},
    "paper": {"metrics": "default", "preset": "reference", "n_points": DEFAULT_N_POINTS, "threads": None,
              "tasks": DEFAULT_TASKS, "task_epochs": 30},
}
SMOKE_MODELS = (GROUND_TRUTH, "random", "single-task", "one-head", "multi-head", "ae", "vae", "beta-vae", "factor-vae")
SMOKE_DATASETS = ("dsprites-procedural", "shapes3d-procedural")
SMOKE_SEEDS = (0, 1, 2)
#: the fixed subset of the smoke tier that CI retrains and compares: (model, dataset, seed). ground-truth
#: (nothing to train) pins every metric and the multi-task protocol on a perfect representation; one-head is
#: the cheapest trained run of the tier.
CI_SUBSETS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "ci": (("ground-truth", "dsprites-procedural", 0), ("one-head", "shapes3d-procedural", 0)),
}
#: absolute tolerance of the CI score regression, per metric value. Same code on the same platform is
#: bit-identical (measured); the tolerance only absorbs BLAS / oneDNN kernel differences between CPUs,
#: which perturb training in the last bits and can move scores of a few-hundred-step smoke run by ~1e-3.
#: A change of definition, default or data moves scores by far more than this.
CI_TOLERANCE = 0.02


#: evaluation settings outside any tier (``disentbench evaluate`` without ``--tier``)
CUSTOM_SETTINGS: dict[str, Any] = {
    "metrics": "default", "preset": "reference", "n_points": DEFAULT_N_POINTS, "tasks": None, "task_epochs": 30,
}


def protocol(tier: str) -> dict[str, Any]:
    if tier not in TIER_PROTOCOLS:
        raise ValueError(f"unknown tier {tier!r}; tiers: {', '.join(TIER_PROTOCOLS)}")
    return dict(TIER_PROTOCOLS[tier])


def evaluation_settings(tier: str | None, **given: Any) -> dict[str, Any]:
    """The settings of an evaluation: a known tier's protocol (so its rows compare with that tier's table),
    else :data:`CUSTOM_SETTINGS`; every setting given explicitly (not None) overrides."""
    settings = dict(CUSTOM_SETTINGS)
    if tier in TIER_PROTOCOLS:
        settings.update({k: v for k, v in TIER_PROTOCOLS[tier].items() if k in settings})
    settings.update({k: v for k, v in given.items() if v is not None})
    return settings


def train_run(
    model: str, dataset: str, seed: int, tier: str, run_dir: Path, *, quiet: bool = True, tasks: Path | None = None
) -> Path:
    """Train a reference model with ``disentbench train`` in a subprocess; returns its ``model.pt``
    (``ground-truth`` has nothing to train and is returned as is)."""
    import sys

    if model == GROUND_TRUTH:
        return Path(GROUND_TRUTH)
    run_dir = Path(run_dir)
    final = run_dir / "model.pt"
    if final.is_file():
        return final
    cmd = [sys.executable, "-m", "disentbench", "train", model, "--dataset", dataset, "--seed", str(seed),
           "--tier", tier, "--out", str(run_dir)]
    threads = protocol(tier).get("threads")
    if threads:
        cmd += ["--threads", str(threads)]
    if tasks is not None:
        cmd += ["--tasks", str(tasks)]
    if (run_dir / "checkpoint.pt").is_file():
        cmd.append("--resume")
    if quiet:
        cmd.append("--no-progress")
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0 or not final.is_file():
        tail = (proc.stderr or "")[-2000:] if quiet else ""
        raise EvaluationError(f"training {model} on {dataset} (seed {seed}, tier {tier}) failed ({proc.returncode}): {tail}")
    return final


def evaluate_run(model_file: Path, model: str, dataset: str, seed: int, tier: str, *, progress: bool = False) -> dict:
    """Score a trained run with its tier's protocol."""
    protocol(tier)  # an unknown tier is an error here
    return evaluate(model_file, dataset, seed=seed, tier=tier, name=model, progress=progress, **evaluation_settings(tier))


@dataclass
class RegressionReport:
    """Per-run, per-metric comparison of re-evaluated scores with the committed table."""

    tolerance: float
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_abs_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        verdict = "PASS" if self.ok else f"FAIL ({len(self.failures)} problem(s))"
        return "\n".join([*self.lines, *self.failures,
                          f"score regression: {verdict}; max |diff| {self.max_abs_diff:.3g}, tolerance {self.tolerance}"])


def regression_check(directory: Path, *, tier: str = "smoke", subset: str = "ci", tolerance: float | None = None,
                     work_dir: Path | None = None) -> RegressionReport:
    """Retrain the runs of ``CI_SUBSETS[subset]``, re-evaluate them, compare every metric with the table."""
    import tempfile

    from disentbench import leaderboard as lb

    tol = CI_TOLERANCE if tolerance is None else float(tolerance)
    table = lb.read_table(lb.table_path(Path(directory), tier))
    preset = protocol(tier)["preset"]
    report = RegressionReport(tol)
    with tempfile.TemporaryDirectory(prefix="disentbench-ci-") as tmp:
        root = Path(work_dir or tmp)
        for model, dataset, seed in CI_SUBSETS[subset]:
            rows = [r for r in table.rows if (r["model"], r["dataset"], r["seed"], r["preset"]) == (model, dataset, str(seed), preset)]
            if not rows:
                report.failures.append(f"{model}/{dataset}/seed {seed}: no committed row in {table.path} (preset {preset})")
                continue
            t0 = time.perf_counter()
            ckpt = train_run(model, dataset, seed, tier, root / f"{model}_{dataset}_{seed}")
            record = evaluate_run(ckpt, model, dataset, seed, tier)
            if record["dataset_version"] != rows[0]["dataset_version"]:
                report.failures.append(f"{model}/{dataset}: dataset version {record['dataset_version']} "
                                       f"!= committed {rows[0]['dataset_version']}")
            worst = 0.0
            for column in table.metric_columns:
                old, new = rows[0].get(column, ""), record["metrics"].get(column)
                if old == "" and new is None:
                    continue
                if old == "" or new is None:
                    report.failures.append(f"{model}/{dataset}/seed {seed}: metric {column} "
                                           f"{'missing from the table' if old == '' else 'no longer computed'}")
                    continue
                diff = abs(float(old) - float(new))
                worst = max(worst, diff)
                if diff > tol:
                    report.failures.append(f"{model}/{dataset}/seed {seed}: {column} = {new:.6f}, "
                                           f"committed {float(old):.6f} (|diff| {diff:.3g} > {tol})")
            extra = sorted(set(record["metrics"]) - set(table.metric_columns))
            if extra:
                report.failures.append(f"{model}/{dataset}/seed {seed}: new metrics not in the table: {extra[:5]}")
            report.max_abs_diff = max(report.max_abs_diff, worst)
            report.lines.append(f"{model}/{dataset}/seed {seed}: max |diff| {worst:.3g} over "
                                f"{len(table.metric_columns)} metrics ({time.perf_counter() - t0:.0f} s)")
    return report
