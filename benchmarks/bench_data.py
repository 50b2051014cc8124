"""Data-layer throughput: random-access cache reads and procedural renders (images per second).

Usage: ``python benchmarks/bench_data.py [--cache-images 200000] [--batch 256] [--seconds 3]``

* cache read: an ``ArrayDataset`` over a raw uint8 ``.npy`` of ``--cache-images`` 64x64x3 images (the
  layout ``disentbench data fetch`` converts Shapes3D / MPI3D into), random indices in batches, page cache
  warm (one sequential pass first); target >= 20,000 images/s.
* bit-packed binary images (the converted dSprites layout), same protocol.
* dsprites-procedural renders: target >= 20,000 images/s.
* shapes3d-procedural renders (geometry of all 480 (scale, shape, orientation) cells built first, timed
  separately): target >= 2,000 images/s.
* mpi3d-procedural renders (the static scene of the 3 cameras built first, timed separately): target >= 2,000
  images/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _rate(read, n_total: int, batch: int, seconds: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        read(rng.integers(0, n_total, batch))
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-images", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    from disentbench.data import get_dataset
    from disentbench.data.official import ArrayDataset
    from disentbench.factors import FactorSpace

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(args.cache_images, 64, 64, 3))
        for s in range(0, args.cache_images, 10_000):
            rows = min(10_000, args.cache_images - s)
            arr[s : s + rows] = np.random.default_rng(s).integers(0, 256, (rows, 64, 64, 3), dtype=np.uint8)
        arr.flush()
        del arr
        space = FactorSpace(("i",), (args.cache_images,))
        ds = ArrayDataset("bench", "0", space, np.load(path, mmap_mode="r"), 3)
        for s in range(0, len(ds), 10_000):  # one sequential pass, as after a first epoch
            ds.images(np.arange(s, min(s + 10_000, len(ds))))
        rate = _rate(ds.images, len(ds), args.batch, args.seconds)
        print(f"cache read   64x64x3 npy memmap ({args.cache_images:,} images), batch {args.batch}: {rate:,.0f} images/s")
        del ds
        packed = np.lib.format.open_memmap(Path(tmp) / "packed.npy", mode="w+", dtype=np.uint8,
                                           shape=(args.cache_images, 64, 8))
        packed[:] = np.random.default_rng(1).integers(0, 256, packed.shape, dtype=np.uint8)
        packed.flush()
        ds = ArrayDataset("bench", "0", space, np.load(Path(tmp) / "packed.npy", mmap_mode="r"), 1, packed=True)
        rate = _rate(ds.images, len(ds), args.batch, args.seconds)
        print(f"cache read   bit-packed 64x64x1 (dSprites layout), batch {args.batch}: {rate:,.0f} images/s")
        del ds, packed

    dsp = get_dataset("dsprites-procedural")
    rate = _rate(dsp.images, len(dsp), args.batch, args.seconds)
    print(f"dsprites-procedural render, batch {args.batch}: {rate:,.0f} images/s")

    s3d = get_dataset("shapes3d-procedural")
    start = time.perf_counter()
    s3d.images(np.arange(480))  # the first 480 indices hold every (scale, shape, orientation) cell
    print(f"shapes3d-procedural geometry of all 480 cells: {time.perf_counter() - start:.1f} s (once per process)")
    rate = _rate(s3d.images, len(s3d), args.batch, args.seconds)
    print(f"shapes3d-procedural render, batch {args.batch}: {rate:,.0f} images/s")

    mpi = get_dataset("mpi3d-procedural")
    start = time.perf_counter()
    mpi.images([0])  # builds the platform, ring and robot column of the three cameras
    print(f"mpi3d-procedural static scene of 3 cameras: {time.perf_counter() - start:.2f} s (once per process)")
    rate = _rate(mpi.images, len(mpi), args.batch, args.seconds)
    print(f"mpi3d-procedural render, batch {args.batch}: {rate:,.0f} images/s")


if __name__ == "__main__":
    main()
