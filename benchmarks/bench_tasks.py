"""Benchmark: targets of 10 random tanh-MLP tasks on the full dSprites grid (737,280 points).

Target (issue 4): under 60 s on the 2-core reference machine, streamed in chunks with bounded memory.
Reports wall and CPU time, throughput, peak resident memory and the load average at the start, for the
whole ``TaskSet.save`` (targets + statistics + HDF5 write).

    .venv/bin/python benchmarks/bench_tasks.py [--chunk-size 16384] [--n-tasks 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from disentbench.factors import FactorSpace
from disentbench.tasks import TaskSet

DSPRITES = FactorSpace(("shape", "scale", "orientation", "posX", "posY"), (3, 6, 40, 32, 32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-size", type=int, default=16384)
    parser.add_argument("--n-tasks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="worker threads (default: available CPUs)")
    args = parser.parse_args()

    load = os.getloadavg()
    task_set = TaskSet.generate(DSPRITES, args.n_tasks, args.seed)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        task_set.save(os.path.join(tmp, "tasks.h5"), chunk_size=args.chunk_size, threads=args.threads)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        size_mb = os.path.getsize(os.path.join(tmp, "tasks.h5")) / 2**20
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    points = DSPRITES.n_points
    gflop = points * args.n_tasks * 2 * sum(w.size for w in task_set.networks[0].weights) / 1e9
    print(f"grid points        {points}")
    print(f"tasks              {args.n_tasks}  (4 x 300 tanh)")
    print(f"chunk size         {args.chunk_size}, threads {args.threads or 'all CPUs'}")
    print(f"load average       {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, at start; {os.cpu_count()} cpus)")
    print(f"wall time          {wall:.1f} s  (target < 60 s)")
    print(f"cpu time           {cpu:.1f} s")
    print(f"throughput         {points * args.n_tasks / wall / 1e6:.2f} M point-tasks/s, {gflop / wall:.0f} GFLOP/s")
    print(f"peak RSS           {rss_after:.0f} MiB (before writing: {rss_before:.0f} MiB)")
    print(f"file size          {size_mb:.1f} MiB")


if __name__ == "__main__":
    main()
