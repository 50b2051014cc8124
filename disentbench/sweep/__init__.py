"""Sweeps: a grid of runs (models × datasets × seeds at one tier) from a TOML file, run cell by cell on this
machine (a process pool) or on a Slurm cluster (submitit); every cell is idempotent and its score record lands in
the leaderboard exactly once. See ``disentbench sweep --help`` and the README's "Run a study on a cluster"."""

from __future__ import annotations

from dataclasses import dataclass

from disentbench.sweep.cells import cell_dir, is_done, table_keys
from disentbench.sweep.grid import Cell, Sweep, SweepError, cell_id, expand, load_sweep, record_tier, subset
from disentbench.sweep.status import CellStatus, format_status, sweep_status

__all__ = ["Cell", "CellStatus", "Sweep", "SweepError", "SweepResult", "cell_id", "expand", "format_status",
           "load_sweep", "run_sweep", "subset", "sweep_status", "todo_cells"]


@dataclass
class SweepResult:
    """What a sweep invocation did: cell id -> done | failed | blocked for every cell it ran."""

    cells: list[Cell]
    results: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(r == "done" for r in self.results.values())


def todo_cells(sweep: Sweep, cells: list[Cell]) -> list[Cell]:
    """The cells not done yet that a scored cell still needs (upstream cells first): an upstream stage whose
    dependents all have their rows is not run again."""
    keys = table_keys(sweep.leaderboard, record_tier(sweep))
    needed: set[str] = set()
    for cell in reversed(cells):
        if (cell.scored or cell.id in needed) and not is_done(cell, cell_dir(sweep, cell), keys):
            needed.add(cell.id)
            if cell.upstream:
                needed.add(cell.upstream)
    return [c for c in cells if c.id in needed and not is_done(c, cell_dir(sweep, c), keys)]


def run_sweep(sweep: Sweep, *, backend: str = "local", workers: int | None = None, slurm=None,
              progress: bool = True, render: bool = True) -> SweepResult:
    """Run every unfinished cell of ``sweep`` with ``backend`` (``local``: ``workers`` processes, default
    cores // threads; ``slurm``: :class:`~disentbench.sweep.slurm.SlurmOptions`), then re-render the leaderboard."""
    import os

    cells = expand(sweep)
    todo = todo_cells(sweep, cells)
    if backend == "local":
        from disentbench.sweep.local import run_local

        workers = workers or max(1, (os.cpu_count() or 1) // (sweep.threads or 1))
        results = run_local(sweep, cells, todo, workers=workers, progress=progress)
    elif backend == "slurm":
        from disentbench.sweep.slurm import SlurmOptions, run_slurm

        results = run_slurm(sweep, cells, todo, options=slurm or SlurmOptions())
    else:
        raise SweepError(f"unknown backend {backend!r}; backends: local, slurm")
    if render and any(r == "done" and c.scored for c in todo if (r := results.get(c.id))):
        from disentbench.leaderboard import render as render_tables

        render_tables(sweep.leaderboard)
    return SweepResult(cells, results)
