"""``disentbench sweep GRID.toml``: run a grid of runs locally or on Slurm; ``disentbench sweep status GRID.toml``."""

from __future__ import annotations

import argparse
from pathlib import Path

from disentbench.commands import comma_names, comma_seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        usage="disentbench sweep [status] GRID.toml [options]",
        help="run a grid of runs (sweep file) on this machine or on Slurm; `sweep status GRID.toml` shows it",
        description="Expand a sweep file (models x datasets x seeds at one tier) into cells and run those not "
        "finished: train, evaluate with the tier's protocol, add the record to the leaderboard once. A failed cell is "
        "retried (`retries` in the file); a partial one resumes from its checkpoint. `disentbench sweep status "
        "GRID.toml` lists every cell's state and log.",
    )
    p.add_argument("target", nargs="+", metavar="[status] GRID.toml", help="the sweep file (after `status`: show it)")
    p.add_argument("--backend", choices=("local", "slurm"), default="local", help="where cells run (default local)")
    p.add_argument("--workers", type=int, help="local: cells at a time (default: cores // threads per cell)")
    p.add_argument("--partition", help="slurm: partition")
    p.add_argument("--time", type=int, default=60, metavar="MIN",
                   help="slurm: time limit per job in minutes (default 60; a job that reaches it is requeued and "
                   "resumes from its checkpoint)")
    p.add_argument("--cpus", type=int, help="slurm: CPUs per job (default: the sweep's threads per cell)")
    p.add_argument("--gpus", type=int, help="slurm: GPUs per job (set device = \"cuda\" in the sweep file)")
    p.add_argument("--slurm-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="slurm: any other sbatch option, e.g. --slurm-arg account=abc (repeatable)")
    p.add_argument("--models", type=comma_names, metavar="A,B", help="only these of the file's models (and their upstream "
                   "stages); the cells are the file's, so the whole file's sweep later finds them done")
    p.add_argument("--datasets", type=comma_names, metavar="A,B", help="only these of the file's datasets")
    p.add_argument("--seeds", type=comma_seeds, metavar="0,1", help="only these of the file's seeds")
    p.add_argument("--dry-run", action="store_true", help="show the cells and what would run; run nothing")
    p.add_argument("--no-progress", action="store_true", help="local: no progress bar")
    p.add_argument("--no-render", action="store_true", help="do not re-render the leaderboard afterwards")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from disentbench import sweep as sw

    status = len(args.target) == 2 and args.target[0] == "status"
    if len(args.target) != 1 and not status:
        raise ValueError("give one sweep file (or `status GRID.toml`)")
    sweep = sw.subset(sw.load_sweep(Path(args.target[-1])), models=args.models, datasets=args.datasets,
                      seeds=args.seeds)
    if status:
        print(sw.format_status(sw.sweep_status(sweep, sw.expand(sweep))))
        return 0
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    cells = sw.expand(sweep)
    if args.dry_run:
        print(sw.format_status(sw.sweep_status(sweep, cells)))
        todo = sw.todo_cells(sweep, cells)
        print(f"would run {len(todo)} of {len(cells)} cells with the {args.backend} backend (dry run: nothing ran)")
        return 0
    from disentbench.sweep.slurm import SlurmOptions

    options = SlurmOptions(partition=args.partition, time_min=args.time, cpus=args.cpus, gpus=args.gpus,
                           extra=dict(_key_value(a) for a in args.slurm_arg))
    result = sw.run_sweep(sweep, backend=args.backend, workers=args.workers, slurm=options,
                          progress=not args.no_progress, render=not args.no_render)
    unfinished = [s for s in sw.sweep_status(sweep, result.cells) if result.results.get(s.cell.id, "done") != "done"]
    if unfinished:
        print(sw.format_status(unfinished))
    print(f"{len(result.cells)} cells; this run: " + ", ".join(
        f"{sum(r == k for r in result.results.values())} {k}" for k in ("done", "failed", "blocked")))
    return 0 if result.ok else 1


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--slurm-arg takes KEY=VALUE, got {text!r}")
    return key, value
