"""Run one cell, idempotently, from its folder ``<work_dir>/<cell name>/``.

The folder holds ``cell.json`` (what to run), ``run/`` (the training run; for a model whose row is the mean over
one run per task, ``run/task_KK/`` per task, each with its own record), ``record.json`` (the row's score record),
``state.json`` (last attempt: state, pid, host, error, log) and ``cell.lock``, held while the cell runs: a second copy
of the same cell waits for the first and then finds it finished. A finished cell is skipped; a partial one resumes
from its checkpoint (finished task runs are kept); a scored cell's record is added to the leaderboard only if its
row is not there yet.

``python -m disentbench.sweep CELL_DIR`` runs one cell (what the local backend starts per cell).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from disentbench.fileio import atomic_write_text
from disentbench.sweep.grid import Cell, Sweep

CELL_FILE, STATE_FILE, RECORD_FILE, RUN_DIR, LOCK_FILE = "cell.json", "state.json", "record.json", "run", "cell.lock"


class CellError(RuntimeError):
    """A cell cannot run (e.g. its upstream cell has not finished)."""


def cell_dir(sweep: Sweep, cell: Cell) -> Path:
    return sweep.work_dir / cell.name


def write_cell(sweep: Sweep, cell: Cell, cells: dict[str, Cell]) -> Path:
    """Write ``cell.json`` (everything a cell process needs) and return the cell's folder."""
    directory = cell_dir(sweep, cell)
    directory.mkdir(parents=True, exist_ok=True)
    upstream = cell_dir(sweep, cells[cell.upstream]) / RUN_DIR if cell.upstream else None
    data = {"id": cell.id, "model": cell.model, "dataset": cell.dataset, "seed": cell.seed, "scored": cell.scored,
            "spec": cell.spec, "upstream_run": str(upstream) if upstream else None,
            "leaderboard": str(sweep.leaderboard.resolve()), "threads": sweep.threads}
    atomic_write_text(directory / CELL_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return directory


def read_state(directory: Path) -> dict[str, Any]:
    path = Path(directory) / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_state(directory: Path, **fields: Any) -> None:
    """Update ``state.json`` with ``fields``."""
    state = {**read_state(directory), **fields}
    atomic_write_text(Path(directory) / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")


def table_keys(leaderboard: Path, tier: str) -> set[tuple[str, str, int, str]]:
    """(model, dataset, seed, preset) of every row of ``tier``'s table in ``leaderboard`` (empty if none)."""
    from disentbench.leaderboard import read_table, table_path

    path = table_path(leaderboard, tier)
    if not path.exists():
        return set()
    return {(r["model"], r["dataset"], int(r["seed"]), r["preset"]) for r in read_table(path).rows}


def row_key(cell: Cell) -> tuple[str, str, int, str]:
    return cell.model, cell.dataset, cell.seed, cell.spec["evaluation"]["preset"]


def is_done(cell: Cell, directory: Path, keys: set) -> bool:
    """A scored cell is done when its row is in the table; an upstream-only cell when its run finished."""
    from disentbench.evaluation import is_trained

    return row_key(cell) in keys if cell.scored else is_trained(cell.model, Path(directory) / RUN_DIR)


def run_cell(directory: str | Path) -> str:
    """Run the cell in ``directory`` to the end: ``"done"`` (this call finished it) or ``"skipped"`` (already was)."""
    from filelock import FileLock

    directory = Path(directory)
    data = json.loads((directory / CELL_FILE).read_text())
    cell = Cell(data["model"], data["dataset"], data["seed"], data["spec"], data["id"], data["scored"])
    leaderboard = Path(data["leaderboard"])
    with FileLock(str(directory / LOCK_FILE)):
        if is_done(cell, directory, table_keys(leaderboard, cell.spec["record_tier"]) if cell.scored else set()):
            write_state(directory, state="done")
            return "skipped"
        attempt = read_state(directory).get("attempt", 0) + 1
        write_state(directory, state="running", attempt=attempt, pid=os.getpid(), host=socket.gethostname(), error=None)
        try:
            _run(cell, directory, data.get("upstream_run"), leaderboard, data.get("threads"))
        except BaseException as exc:
            write_state(directory, state="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        write_state(directory, state="done")
    return "done"


def _run(cell: Cell, directory: Path, upstream_run: str | None, leaderboard: Path, threads: int | None) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        model_file = _train(cell, directory / RUN_DIR, upstream_run, threads)
        if cell.scored:
            _evaluate_and_add(cell, directory, model_file, leaderboard)


def _train(cell: Cell, run: Path, upstream_run: str | None, threads: int | None) -> Path:
    """Train the cell's row (each of its runs not finished yet, resuming a partial one); returns what it scores."""
    from disentbench import evaluation as ev

    if cell.spec["train"] is None:
        return Path(ev.GROUND_TRUTH)
    if ev.is_trained(cell.model, run):
        return ev.row_model(cell.model, run)
    if upstream_run and not (Path(upstream_run) / "model.pt").is_file():
        raise CellError(f"the upstream run {upstream_run} has not finished")
    import torch

    from disentbench.training import train

    if threads:
        torch.set_num_threads(threads)
    for folder, index in ev.row_runs(cell.model, run):
        if (folder / "model.pt").is_file():
            continue
        spec = cell.spec["train"] if index is None else ev.task_spec(cell.spec["train"], index)
        train(spec, folder, upstream_path=upstream_run, resume=(folder / "checkpoint.pt").is_file(), progress=False)
    return ev.row_model(cell.model, run)


def _evaluate_and_add(cell: Cell, directory: Path, model_file: Path, leaderboard: Path) -> None:
    from disentbench import evaluation as ev
    from disentbench.leaderboard import LeaderboardError, add_records, load_record

    path = directory / RECORD_FILE
    if path.is_file():
        record = load_record(path)
    else:
        record = ev.evaluate_row(model_file, cell.model, cell.dataset, seed=cell.seed, tier=cell.spec["record_tier"],
                                 **cell.spec["evaluation"])
        ev.write_record(record, path)
    tier = cell.spec["record_tier"]
    if row_key(cell) in table_keys(leaderboard, tier):
        return
    try:
        add_records([record], leaderboard)
    except LeaderboardError:
        if row_key(cell) not in table_keys(leaderboard, tier):
            raise  # not a row added meanwhile by another copy of this cell: a real error
