"""``disentbench demo``: the end-to-end demo on a fresh machine.

Prepares ``dsprites-procedural`` (rendered offline), generates the default task set (10 random tanh-MLP
tasks, seed 0), trains the multi-head model at the smoke tier, evaluates it with the smoke-tier protocol,
prints its scores next to the committed leaderboard rows of the same dataset and seed, and writes the run's
report (``disentbench report``: traversals, embeddings, heatmaps, curves) beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATASET = "dsprites-procedural"
MODEL = "multi-head"
#: committed rows shown beside the run: the study's models and the ground truth (the upper anchor)
STUDY_MODELS = ("multi-head", "one-head", "single-task", "random", "ground-truth")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="end to end: dsprites-procedural -> tasks -> train multi-head (smoke) -> evaluate -> compare with the "
        "leaderboard -> report",
    )
    parser.add_argument("--seed", type=int, default=0, help="training / evaluation seed (default 0)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/demo"), help="where the run goes (default runs/demo)")
    parser.add_argument("--leaderboard", type=Path, default=None, help="leaderboard directory (default: the current version's, leaderboards/v<N>)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from disentbench import evaluation as ev
    from disentbench import leaderboard as lb
    from disentbench.data import get_dataset
    from disentbench.tasks import default_task_set
    from disentbench import tiers
    from disentbench.tiers import protocol

    if args.seed < 0:
        raise ValueError(f"--seed must be non-negative, got {args.seed}")
    t0 = time.perf_counter()
    work = args.work_dir / f"seed{args.seed}"
    work.mkdir(parents=True, exist_ok=True)

    def step(n: int, text: str) -> None:
        print(f"[{n}/5 | {time.perf_counter() - t0:5.0f} s] {text}", flush=True)

    dataset = get_dataset(DATASET)
    space = dataset.factor_space
    sample = dataset.images(np.arange(0, space.n_points, space.n_points // 8))
    step(1, f"dataset {dataset.name} v{dataset.version}: {space.n_points:,} images on the grid "
            f"{dict(zip(space.names, space.sizes))} (rendered on demand; {len(sample)} test renders ok)")

    tasks_path = work / "tasks.h5"
    tasks = default_task_set(space)
    if not tasks_path.exists():
        tasks.save(tasks_path, grid=False)
    step(2, f"tasks: {tasks.n_tasks} random tanh-MLP tasks (seed 0, the trainer's default set) -> {tasks_path}")

    run_dir = work / MODEL
    step(3, f"training {MODEL} at the smoke tier (seed {args.seed}) -> {run_dir}")
    ckpt = ev.train_run(MODEL, DATASET, args.seed, "smoke", run_dir, quiet=False, tasks=tasks_path)

    step(4, "evaluating with the smoke-tier protocol " + str(protocol("smoke")))
    record = ev.evaluate_run(ckpt, MODEL, DATASET, args.seed, "smoke", progress=True)
    ev.write_record(record, work / "record.json")

    directory = args.leaderboard or lb.version_dir()
    rows = []
    table_file = lb.table_path(directory, "smoke")
    if table_file.exists():
        table = lb.read_table(table_file)
        by_model = {r["model"]: r for r in table.rows
                    if r["dataset"] == DATASET and r["seed"] == str(args.seed) and r["preset"] == record["preset"]}
        rows = [by_model[m] for m in STUDY_MODELS if m in by_model]
    print()
    keys = [k for k in lb.HEADLINE_METRICS if k in record["metrics"]]
    print(ev.format_record(record, rows, keys=keys))
    if rows:
        print(f"\n(columns after 'this run': committed rows of {table_file}; full table: {table_file.with_suffix('.md')})")
        kernels = record.get("blas_kernels", [])
        if any(k.lower() != tiers.TABLE_BLAS_KERNEL.lower() for k in kernels):
            print(f"(this run used OpenBLAS kernel {', '.join(kernels)}; the table was computed with "
                  f"{tiers.TABLE_BLAS_KERNEL}, so a trained row ends elsewhere: run with "
                  f"OPENBLAS_CORETYPE={tiers.TABLE_BLAS_KERNEL} on an AVX-512 CPU to reproduce it exactly)")
    else:
        print(f"\n(no committed {DATASET} rows for seed {args.seed} in {table_file} to compare with)")
    print(f"score record -> {work / 'record.json'}")

    from disentbench.api import report

    step(5, f"writing the run's report -> {work / 'report'}")
    summary = report(run_dir, record=work / "record.json", out=work / "report")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in summary["timings_s"].items())
    print(f"report -> {work / 'report' / 'index.html'} ({len(summary['figures'])} figures; {timing}; "
          f"{time.perf_counter() - t0:.0f} s in all)")
    return 0
