"""``disentbench demo``: score a built-in example representation and print the table."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="score a built-in example representation (noisy, slightly rotated code over a dSprites-like grid)",
    )
    parser.add_argument("--metrics", default="default", help="metric names, 'default' or 'all' (default: %(default)s)")
    parser.add_argument("--preset", default=None,
                        help="settings preset (default: 'fast' when a metric declares it, else 'reference')")
    parser.add_argument("--seed", type=int, default=0, help="seed of the example and of the metrics (default: 0)")
    parser.add_argument("--n-samples", type=int, default=20_000, help="rows of the example (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from disentbench.commands.score import format_table, score_arrays
    from disentbench.examples import DSPRITES_LIKE, example_representation
    from disentbench.metrics import list_presets

    preset = args.preset or ("fast" if "fast" in list_presets() else "reference")

    classes, codes = example_representation(args.n_samples, seed=args.seed)
    grid = dict(zip(DSPRITES_LIKE.names, DSPRITES_LIKE.sizes))
    print(f"example: {codes.shape[0]} points of a dSprites-like grid {grid}")
    print(f"codes: {codes.shape[1]} dims = 5 noisy factor codes (pairs rotated 0.2 rad) + 4 noise + 1 collapsed")
    print(f"metrics: {args.metrics}, preset: {preset}, seed: {args.seed}\n")
    results = score_arrays(classes, codes, metrics=args.metrics, preset=preset, seed=args.seed)
    print(format_table(results))
    return 0
