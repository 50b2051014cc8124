"""``disentbench evaluate``: score a model on a dataset (a thin wrapper of :func:`disentbench.api.evaluate`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disentbench.tiers import TIERS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model (checkpoint or run folder, safetensors folder, .pt2 or TorchScript encoder, .npz code "
        "file or ground-truth) on a dataset",
        description=(
            "Encode a seeded sample of the dataset's factor grid (cached), compute the metrics, write a score "
            "record and print a table. MODEL: a disentbench checkpoint or run folder, an exported safetensors folder, "
            "a .pt2 (torch.export) or TorchScript encoder ((B,C,64,64) images in [0,1] -> (B,d) codes), an .npz with 'codes' and 'indices', or 'ground-truth' "
            "(the normalised factors as codes: every metric's upper anchor). With --tier the tier's "
            "protocol (metrics, preset, points, tasks) is the default, so the record compares with that table."
        ),
    )
    parser.add_argument("--model", required=True, type=Path, help="checkpoint or run folder, safetensors folder, .pt2 or TorchScript file, .npz code file or 'ground-truth'")
    parser.add_argument("--dataset", required=True, help="dataset name (e.g. dsprites-procedural)")
    parser.add_argument("--metrics", default=None, help="default | all | comma-separated metric names (default: default)")
    parser.add_argument("--preset", default=None, help="metric settings preset (default: reference, or the tier's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of every metric (default 0)")
    parser.add_argument("--n-points", type=int, default=None, help="grid points to encode (default 15000; 0 = whole grid)")
    parser.add_argument("--tier", choices=TIERS, default=None,
                        help="tier of the record: its protocol is the default (default: custom, no tier)")
    parser.add_argument("--tasks", type=Path, default=None, help="task file, or 'default' (the dataset's default set): add the multi-task protocol (heads on frozen codes; default: none, or the tier's)")
    parser.add_argument("--task-epochs", type=int, default=None, help="epochs of the multi-task heads (default 30 as seed 004, or the tier's)")
    parser.add_argument("--bootstrap", type=int, default=None, metavar="B",
                        help="resamples of the points for each score's bootstrap interval; 0 = none (default 100, "
                             "fewer for the costly metrics: tiers.BOOTSTRAP_LIMITS)")
    parser.add_argument("--bootstrap-level", type=float, default=None, metavar="LEVEL",
                        help="level of the bootstrap intervals, in (0, 1) (default 0.95)")
    parser.add_argument("--out", type=Path, default=None, help="write the score record (JSON) here")
    parser.add_argument("--leaderboard", type=Path, default=None, help="also add the record to this leaderboard directory")
    parser.add_argument("--representation", default=None, metavar="NAME",
                        help="score this named representation of the model instead of its default (e.g. kf: ckn, "
                             "ckn_plus_tsn_0; an unknown name lists them)")
    parser.add_argument("--name", default=None, help="model name in the record / leaderboard (default: the model type)")
    parser.add_argument("--batch-size", type=int, default=256, help="encoding batch size (default 256)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the code cache")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from disentbench import evaluation
    from disentbench.api import evaluate

    if args.leaderboard is not None and not args.name:
        raise ValueError("--leaderboard needs --name MODEL_NAME (the row's model name)")
    record = evaluate(args.model, args.dataset, tier=args.tier, metrics=args.metrics, preset=args.preset,
                      seed=args.seed, n_points=args.n_points, tasks=args.tasks, task_epochs=args.task_epochs,
                      name=args.name, batch_size=args.batch_size, use_cache=not args.no_cache,
                      progress=not args.quiet and sys.stderr.isatty(), out=args.out,
                      representation=args.representation, bootstrap=args.bootstrap,
                      bootstrap_level=args.bootstrap_level)
    print(evaluation.format_record(record))
    if args.out is not None:
        print(f"score record -> {args.out}")
    if args.leaderboard is not None:
        from disentbench import leaderboard as lb

        for path in lb.add_records([record], args.leaderboard):
            print(f"added to {path}")
        lb.render(args.leaderboard)
    return 0
