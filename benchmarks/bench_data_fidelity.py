"""How close ``dsprites-procedural`` is to the official sprites: compare with the frames of ``dsprites.gif``.

Usage: ``python benchmarks/bench_data_fidelity.py --gif path/to/dsprites.gif`` (the gif is in
deepmind/dsprites-dataset; it is not shipped here). Every ``--step``-th frame is matched against the
renders of all (shape, scale, orientation) at the grid positions nearest its centroid (+-2 in x, +-3 in
y); the script prints the differing pixels of the best match per frame.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gif", required=True)
    parser.add_argument("--step", type=int, default=2)
    args = parser.parse_args()

    from PIL import Image, ImageSequence

    from disentbench.data.procedural.dsprites import HI, LO, render_dsprites

    frames = [np.asarray(f.convert("L")) > 127 for f in ImageSequence.Iterator(Image.open(args.gif))]
    base = np.array([[s, sc, o] for s in range(3) for sc in range(6) for o in range(40)])
    step = (HI - LO) / 31
    diffs, lit = [], []
    for frame in frames[:: args.step]:
        ys, xs = np.nonzero(frame)
        px, py = (int(round((c.mean() + 0.5 - LO) / step)) for c in (xs, ys))
        positions = [(x, y) for x in range(px - 2, px + 3) for y in range(py - 3, py + 4) if 0 <= x < 32 and 0 <= y < 32]
        classes = np.concatenate([np.column_stack([base, np.full((len(base), 2), xy)]) for xy in positions])
        diff = (render_dsprites(classes)[..., 0] != frame).sum(axis=(1, 2))
        diffs.append(int(diff.min()))
        lit.append(int(frame.sum()))
    diffs = np.array(diffs)
    print(f"{len(diffs)} frames: differing pixels mean {diffs.mean():.1f}, median {np.median(diffs):.1f}, "
          f"max {diffs.max()}, identical {(diffs == 0).sum()}; lit pixels per frame mean {np.mean(lit):.1f}")


if __name__ == "__main__":
    main()
