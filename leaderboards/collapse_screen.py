"""Screen a smoke budget for collapsed codes without the full evaluation: train one run with budget or config keys
overridden, encode 3,000 grid points and count the code dimensions that fail the evaluation's collapse test
(:func:`disentbench.evaluation.collapsed_dimensions`). Prints one JSON line: the count, the smallest per-dimension
std and the run's held-out errors (the `test_*` values of the last ``eval`` event of its log).

    .venv/bin/python leaderboards/collapse_screen.py MODEL DATASET SEED OUT_DIR [KEY=JSON ...]
    .venv/bin/python leaderboards/collapse_screen.py ae shapes3d-procedural 1 /tmp/ae1 'init="default"'
    .venv/bin/python leaderboards/collapse_screen.py single-task dsprites-procedural 2 /tmp/st8 task_index=8 lr=1e-3

``task_index=N`` picks the task of a single-task run (one member of its single-mean row).

The measured runs are in docs/training.md (auto-encoder smoke initialisation, study-model smoke learning rate).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

N_POINTS = 3000


def screen(model: str, dataset: str, seed: int, out: Path, overrides: dict) -> dict:
    """Train ``model`` at the smoke tier with ``overrides`` into ``out`` (resumed if interrupted) and screen it."""
    from disentbench.data import get_dataset
    from disentbench.evaluation import collapsed_dimensions
    from disentbench.evaluation.codes import encode, sample_indices
    from disentbench.evaluation.sources import open_model
    from disentbench.training import resolve_spec, train

    data = get_dataset(dataset)
    overrides = dict(overrides)
    task_index = overrides.pop("task_index", None)
    spec = resolve_spec(model, tier="smoke", seed=seed, dataset=dataset, threads=1, overrides=overrides,
                        task_index=task_index)
    summary = train(spec, out, dataset=data, resume=(out / "checkpoint.pt").is_file(), progress=False)
    codes = encode(open_model(out).encoder, data, sample_indices(data.factor_space.n_points, N_POINTS, 0),
                   progress=False)
    evals = [e for e in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if e.get("event") == "eval"]
    last = evals[-1] if evals else {}
    return {"model": model, "dataset": dataset, "seed": seed, "task_index": task_index, "overrides": overrides,
            "collapsed": len(collapsed_dimensions(codes)), "code_dim": int(codes.shape[1]),
            "min_std": float(codes.std(axis=0).min()),
            "test": {k: v for k, v in last.items() if k.startswith("test_") and isinstance(v, float)},
            "wall_s": summary.get("wall_s")}


def main(argv: list[str]) -> None:
    if len(argv) < 4:
        sys.exit(__doc__.split("\n\n")[1])
    model, dataset, seed, out = argv[0], argv[1], int(argv[2]), Path(argv[3])
    overrides = {}
    for item in argv[4:]:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"error: override {item!r} is not KEY=JSON")
        overrides[key] = json.loads(value)
    print(json.dumps(screen(model, dataset, seed, out, overrides)))


if __name__ == "__main__":
    main(sys.argv[1:])
