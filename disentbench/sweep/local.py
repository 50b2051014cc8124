"""Local backend: ``workers`` threads, each running one cell at a time in its own process (so a crashed or killed
cell is one failed attempt, retried, and never takes the pool down); a cell starts once its upstream cell is done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from disentbench.sweep.cells import read_state, write_cell, write_state
from disentbench.sweep.grid import Cell, Sweep

LOG_FILE = "log.txt"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_local(sweep: Sweep, cells: list[Cell], todo: list[Cell], *, workers: int, progress: bool = True,
              ) -> dict[str, str]:
    """Run the cells ``todo`` (each retried up to ``sweep.retries`` times); cell id -> done | failed | blocked."""
    from tqdm import tqdm

    by_id = {c.id: c for c in cells}
    pending = [c.id for c in todo]
    attempts = {c.id: 0 for c in todo}
    results: dict[str, str] = {}
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(todo), unit="cell", disable=not progress) as bar:
        running = {}
        while pending or running:
            for cid in list(pending):
                upstream = by_id[cid].upstream
                if upstream in attempts and results.get(upstream) != "done":
                    if results.get(upstream) in ("failed", "blocked"):
                        pending.remove(cid)
                        results[cid] = "blocked"
                        bar.update()
                    continue
                pending.remove(cid)
                attempts[cid] += 1
                directory = write_cell(sweep, by_id[cid], by_id)
                running[pool.submit(_run_process, directory, attempts[cid], sweep.threads)] = cid
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                cid = running.pop(future)
                if future.result() == 0:
                    results[cid] = "done"
                elif attempts[cid] <= sweep.retries:
                    pending.insert(0, cid)
                    continue
                else:
                    results[cid] = "failed"
                bar.update()
                bar.set_postfix(failed=sum(r != "done" for r in results.values()), refresh=False)
    return results


def _run_process(directory: Path, attempt: int, threads: int | None) -> int:
    """Run one attempt of the cell in ``directory`` in a child process, its output appended to ``log.txt``."""
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in _THREAD_VARIABLES})
    log = directory / LOG_FILE
    write_state(directory, log=str(log))
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"--- attempt {attempt}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        code = subprocess.run([sys.executable, "-m", "disentbench.sweep", str(directory)],
                              stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0 and read_state(directory).get("state") != "failed":  # killed: the cell could not say so itself
        write_state(directory, state="failed", error=f"process ended with exit code {code}")
    return code
