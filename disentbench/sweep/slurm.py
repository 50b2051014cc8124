"""Slurm backend through submitit: one job per cell, ``afterok`` dependencies on upstream cells' jobs, requeue on
preemption or time-out (submitit's checkpointing; the cell resumes from its checkpoint), logs in the cell's folder.
The driver waits for the jobs, resubmits a failed cell up to ``sweep.retries`` times and adopts the jobs of an
earlier invocation that are still queued or running (so running a sweep twice submits nothing twice)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disentbench.sweep.cells import read_state, run_cell, write_cell, write_state
from disentbench.sweep.grid import Cell, Sweep, SweepError

try:
    import submitit
    from submitit.helpers import Checkpointable
except ImportError:  # the slurm extra is not installed: run_slurm says so
    submitit = None
    Checkpointable = object


@dataclass
class SlurmOptions:
    """Resources of every cell's job (``None``: the cluster's default)."""

    partition: str | None = None
    time_min: int = 60
    cpus: int | None = None
    gpus: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any other sbatch option, e.g. {"account": "abc"}


class CellJob(Checkpointable):
    """What a cell's job runs. On preemption or time-out submitit calls ``checkpoint`` (inherited), which requeues
    the same call: the cell then resumes from its training checkpoint."""

    def __call__(self, directory: str) -> str:
        return run_cell(directory)


def run_slurm(sweep: Sweep, cells: list[Cell], todo: list[Cell], *, options: SlurmOptions, poll_s: float = 2.0,
              sacct_s: float = 30.0) -> dict[str, str]:
    """Submit and follow the cells ``todo``; cell id -> done | failed | blocked. A finished job shows at once (its
    result file); a failed or cancelled one at the next ``sacct`` (one call for all jobs every ``sacct_s``; submitit
    alone would wait up to 10 minutes)."""
    if submitit is None:
        raise SweepError("the slurm backend needs submitit: pip install 'disentbench[slurm]'")
    by_id = {c.id: c for c in cells}
    pending = [c.id for c in todo]
    attempts = {c.id: 0 for c in todo}
    results: dict[str, str] = {}
    jobs = {cid: job for cid in pending if (job := _adopt(sweep, by_id[cid])) is not None}
    for cid, job in jobs.items():
        pending.remove(cid)
        attempts[cid] = 1
        print(f"following job {job.job_id} of {by_id[cid].name} (submitted earlier)", flush=True)
    next_sacct = time.monotonic() + sacct_s
    while pending or jobs:
        for cid in list(pending):
            upstream = by_id[cid].upstream
            if upstream in attempts and results.get(upstream) != "done":
                if results.get(upstream) in ("failed", "blocked"):
                    pending.remove(cid)
                    results[cid] = "blocked"
                    print(f"blocked {by_id[cid].name}: its upstream cell failed", flush=True)
                if upstream not in jobs:
                    continue
            pending.remove(cid)
            attempts[cid] += 1
            after = jobs[upstream].job_id if upstream in jobs else None
            jobs[cid] = _submit(sweep, by_id[cid], by_id, options, after)
        time.sleep(poll_s)
        if jobs and time.monotonic() >= next_sacct:
            next(iter(jobs.values())).watcher.update()  # the watcher is shared: one sacct for every job
            next_sacct = time.monotonic() + sacct_s
        for cid, job in list(jobs.items()):
            if not job.done():
                continue
            del jobs[cid]
            directory = sweep.work_dir / by_id[cid].name
            if read_state(directory).get("state") == "done":
                results[cid] = "done"
                print(f"done {by_id[cid].name} (job {job.job_id})", flush=True)
                continue
            if read_state(directory).get("state") != "failed":  # killed or cancelled: the cell could not say so
                write_state(directory, state="failed", error=f"job {job.job_id} ended {job.state}")
            for dependent in _cancel_dependents(cid, jobs, by_id):
                pending.insert(0, dependent)
                attempts[dependent] -= 1  # never started: not an attempt
            if attempts[cid] <= sweep.retries:
                print(f"retrying {by_id[cid].name}: {read_state(directory).get('error')}", flush=True)
                pending.insert(0, cid)
            else:
                results[cid] = "failed"
    return results


def _submit(sweep: Sweep, cell: Cell, cells: dict[str, Cell], options: SlurmOptions, after: str | None):
    directory = write_cell(sweep, cell, cells)
    try:
        executor = submitit.SlurmExecutor(folder=directory / "slurm")
    except RuntimeError as exc:
        raise SweepError(f"the slurm backend needs a Slurm cluster: {exc}") from None
    params: dict[str, Any] = {"job_name": f"disentbench-{cell.model}-{cell.dataset}-{cell.seed}",
                              "time": options.time_min, "cpus_per_task": options.cpus or sweep.threads or 1,
                              "additional_parameters": dict(options.extra)}
    if options.partition:
        params["partition"] = options.partition
    if options.gpus:
        params["gpus_per_node"] = options.gpus
    if after:
        params["dependency"] = f"afterok:{after}"
    executor.update_parameters(**params)
    job = executor.submit(CellJob(), str(directory))
    write_state(directory, state="submitted", job_id=job.job_id, log=str(job.paths.stdout), error=None)
    print(f"submitted {cell.name}: job {job.job_id}" + (f" (after job {after})" if after else ""), flush=True)
    return job


def _adopt(sweep: Sweep, cell: Cell):
    """The job of an earlier invocation for ``cell`` when it is still queued or running, else None."""
    directory = sweep.work_dir / cell.name
    state = read_state(directory)
    if state.get("state") not in ("submitted", "running") or not state.get("job_id"):
        return None
    job = submitit.SlurmJob(folder=directory / "slurm", job_id=str(state["job_id"]))
    return None if job.done(force_check=True) else job


def _cancel_dependents(cid: str, jobs: dict, cells: dict[str, Cell]) -> list[str]:
    """Cancel the queued jobs waiting (afterok) on ``cid``'s failed job, transitively; their cell ids."""
    cancelled = []
    for other, job in list(jobs.items()):
        if cells[other].upstream == cid:
            job.cancel(check=False)
            del jobs[other]
            cancelled += [other, *_cancel_dependents(other, jobs, cells)]
    return cancelled
