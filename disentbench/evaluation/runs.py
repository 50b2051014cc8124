"""Reference runs of a tier: train one in a subprocess (``disentbench train``), score it with the tier's protocol."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from disentbench.evaluation.record import evaluate
from disentbench.evaluation.sources import GROUND_TRUTH, EvaluationError
from disentbench.tiers import evaluation_settings, protocol


def train_run(
    model: str, dataset: str, seed: int, tier: str, run_dir: Path, *, quiet: bool = True, tasks: Path | None = None
) -> Path:
    """Train a reference model with ``disentbench train`` in a subprocess; returns its ``model.pt``
    (``ground-truth`` has nothing to train and is returned as is). A staged model's upstream run (the first model
    its registry entry accepts; same dataset, seed and tier) is trained first, beside ``run_dir``, and passed as
    ``--from``."""
    if model == GROUND_TRUTH:
        return Path(GROUND_TRUTH)
    run_dir = Path(run_dir)
    final = run_dir / "model.pt"
    if final.is_file():
        return final
    cmd = [sys.executable, "-m", "disentbench", "train", model, "--dataset", dataset, "--seed", str(seed),
           "--tier", tier, "--out", str(run_dir)]
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
