"""``disentbench sweep status``: the state of every cell (done, running, queued, failed, partial, pending) and
where its log is."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from disentbench.sweep.cells import LOCK_FILE, RUN_DIR, cell_dir, is_done, read_state, table_keys
from disentbench.sweep.grid import Cell, Sweep, record_tier

#: Slurm job states of a job that has not ended
_LIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED"}
STATES = ("done", "running", "queued", "failed", "partial", "pending")


@dataclass(frozen=True)
class CellStatus:
    cell: Cell
    state: str
    detail: str
    log: str | None
    directory: Path


def sweep_status(sweep: Sweep, cells: list[Cell]) -> list[CellStatus]:
    """One :class:`CellStatus` per cell, from the leaderboard, the cell folders and (for jobs) ``squeue``."""
    keys = table_keys(sweep.leaderboard, record_tier(sweep))
    states = {c.id: read_state(cell_dir(sweep, c)) for c in cells}
    live = _live_jobs([s["job_id"] for s in states.values() if s.get("job_id")])
    return [_status(c, cell_dir(sweep, c), states[c.id], keys, live) for c in cells]


def _status(cell: Cell, directory: Path, state: dict, keys: set, live: dict[str, str]) -> CellStatus:
    log = state.get("log")

    def status(name: str, detail: str = "") -> CellStatus:
        return CellStatus(cell, name, detail, log, directory)

    if is_done(cell, directory, keys):
        return status("done", "" if cell.scored else "upstream run")
    if _locked(directory):
        return status("running", f"pid {state.get('pid')} on {state.get('host')}, attempt {state.get('attempt')}")
    job_state = live.get(str(state.get("job_id")))
    if job_state:
        return status("running" if job_state == "RUNNING" else "queued", f"job {state['job_id']} {job_state}")
    if state.get("state") == "failed":
        return status("failed", state.get("error") or "")
    from disentbench.evaluation import row_runs

    runs = [folder for folder, _ in row_runs(cell.model, directory / RUN_DIR)]
    if any((folder / "checkpoint.pt").is_file() for folder in runs):
        finished = sum((folder / "model.pt").is_file() for folder in runs)
        return status("partial", "resumes from run/checkpoint.pt" if len(runs) == 1 else
                      f"{finished} of {len(runs)} task runs finished; resumes from their checkpoints")
    return status("pending")


def _locked(directory: Path) -> bool:
    """Whether a process holds the cell's lock (it is running)."""
    from filelock import FileLock, Timeout

    if not (directory / LOCK_FILE).exists():
        return False
    try:
        with FileLock(str(directory / LOCK_FILE), timeout=0):
            return False
    except Timeout:
        return True


def _live_jobs(job_ids: list[str]) -> dict[str, str]:
    """job id -> Slurm state of those of ``job_ids`` still queued or running (empty without Slurm)."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    proc = subprocess.run(["squeue", "--me", "-h", "-o", "%i %T"], capture_output=True, text=True)
    wanted = set(map(str, job_ids))
    jobs = (line.split(maxsplit=1) for line in proc.stdout.splitlines() if " " in line)
    return {job: state for job, state in jobs if job in wanted and state in _LIVE}


def format_status(statuses: list[CellStatus]) -> str:
    """A table (state, model, dataset, seed, cell folder, detail, log) and a count per state."""
    head = ("state", "model", "dataset", "seed", "cell", "detail / log")
    rows = [(s.state, s.cell.model, s.cell.dataset, str(s.cell.seed), str(s.directory),
             "; ".join(x for x in (s.detail, f"log {s.log}" if s.log else "") if x)) for s in statuses]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in [head, *rows]]
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    lines.append(f"{len(statuses)} cells: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return "\n".join(line.rstrip() for line in lines)
