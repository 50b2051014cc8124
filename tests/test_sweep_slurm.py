"""Sweeps on a real single-node Slurm cluster (``eval "$(tests/slurm/start-cluster.sh)"``; ``pytest -m slurm``).

One small grid (ground-truth, random and a tiny kf with its kf-teacher stage; seeds 0 and 1; a cheap evaluation):
on Slurm with one job killed (kill -9 of its cell process) and one cancelled (scancel), it ends with every row
exactly once and the same rows as the local backend; a second run submits nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from disentbench import leaderboard as lb
from disentbench import sweep as sw
from disentbench.sweep.cells import read_state

pytestmark = pytest.mark.slurm

TINY = "subset = 512\nepochs = 2\nbatch_size = 32\ncheckpoint_every_steps = 2\n"
GRID = f"""\
tier = "smoke"
models = ["ground-truth", "random", "kf"]
datasets = ["dsprites-procedural"]
seeds = [0, 1]
leaderboard = "lb/v{lb.LEADERBOARD_VERSION}"
work_dir = "cells"
threads = 1
retries = 2

[overrides.kf-teacher]
{TINY}
[overrides.kf]
{TINY}
[evaluation]
metrics = "mig"
n_points = 2000
tasks = false
"""
SCORED = 6  # ground-truth, random, kf for two seeds (kf-teacher is a stage, not a row)


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("sinfo") is None or subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0:
        pytest.fail('no Slurm cluster: start one with eval "$(tests/slurm/start-cluster.sh)"')


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    paths = {}
    for name in ("slurm", "local"):
        (root / name).mkdir()
        paths[name] = root / name / "grid.toml"
        paths[name].write_text(textwrap.dedent(GRID))
    yield paths
    jobs = [str(s["job_id"]) for d in (root / "slurm" / "cells").glob("*") if (s := read_state(d)).get("job_id")]
    if jobs:  # a failed test leaves nothing queued
        subprocess.run(["scancel", *jobs], check=False)


def sweep_command(path, *extra):
    return [sys.executable, "-m", "disentbench", "sweep", str(path), "--no-render", *extra]


def table(path):
    sweep = sw.load_sweep(path)
    return lb.read_table(lb.table_path(sweep.leaderboard, sw.record_tier(sweep))).rows


def cell_folder(path, model, seed):
    sweep = sw.load_sweep(path)
    (cell,) = [c for c in sw.expand(sweep) if c.model == model and c.seed == seed]
    return sweep.work_dir / cell.name


def wait_for(condition, what, timeout=1800):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_killed_and_cancelled_jobs_are_retried_and_every_row_lands_once(cluster, grids):
    path = grids["slurm"]
    driver = subprocess.Popen(sweep_command(path, "--backend", "slurm", "--time", "30", "--cpus", "1"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = kill_and_cancel(path, driver)
    finally:
        driver.kill()
    print(out)
    assert driver.returncode == 0, out
    teacher0, teacher1 = cell_folder(path, "kf-teacher", 0), cell_folder(path, "kf-teacher", 1)
    assert f"retrying {teacher0.name}" in out and f"retrying {teacher1.name}" in out
    assert read_state(teacher0)["attempt"] == 2  # killed once, then resumed from run/checkpoint.pt
    assert "after job" in out  # the students' jobs waited on their teachers' (afterok)
    rows = table(path)
    assert len(rows) == SCORED
    assert len({(r["model"], r["seed"]) for r in rows}) == SCORED


def kill_and_cancel(path, driver) -> str:
    """scancel the seed-1 teacher's job, kill -9 the seed-0 teacher's process; the driver's output at its end."""
    teacher0, teacher1 = cell_folder(path, "kf-teacher", 0), cell_folder(path, "kf-teacher", 1)
    # scancel the seed-1 teacher's job as soon as it is submitted (its student waits on it: afterok)
    job = wait_for(lambda: read_state(teacher1).get("job_id"), "the seed-1 teacher's job")
    subprocess.run(["scancel", str(job)], check=True)
    # kill -9 the seed-0 teacher's cell process once it has written a training checkpoint
    wait_for(lambda: (teacher0 / "run" / "checkpoint.pt").is_file(), "the seed-0 teacher's first checkpoint")
    state = read_state(teacher0)
    os.kill(state["pid"], signal.SIGKILL)
    return driver.communicate(timeout=3600)[0]


def test_local_backend_fills_the_same_rows(grids):
    subprocess.run(sweep_command(grids["local"], "--no-progress", "--workers", "2"), check=True)
    columns = lambda rows: sorted(({k: v for k, v in r.items() if k != "created"} for r in rows),  # noqa: E731
                                  key=lambda r: (r["model"], r["seed"]))
    assert columns(table(grids["local"])) == columns(table(grids["slurm"]))


def test_rerunning_a_finished_sweep_submits_nothing(cluster, grids):
    jobs_before = sorted(p.name for p in (grids["slurm"].parent / "cells").glob("*/slurm/*.pkl"))
    proc = subprocess.run(sweep_command(grids["slurm"], "--backend", "slurm"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "submitted" not in proc.stdout and "this run: 0 done, 0 failed, 0 blocked" in proc.stdout
    assert sorted(p.name for p in (grids["slurm"].parent / "cells").glob("*/slurm/*.pkl")) == jobs_before
    status = subprocess.run([sys.executable, "-m", "disentbench", "sweep", "status", str(grids["slurm"])],
                            capture_output=True, text=True, check=True).stdout
    assert status.splitlines()[-1] == "8 cells: 8 done, 0 running, 0 queued, 0 failed, 0 partial, 0 pending"
