"""``disentbench leaderboard add | render | check | populate | compare``: the versioned score tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disentbench.commands import comma_names, comma_seeds
from disentbench.tiers import CI_SUBSETS, TIERS


#: ``--dir`` of every subcommand
DIR_HELP = "leaderboard version directory (default: the current version's, leaderboards/v<N>)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        help="add score records to the versioned leaderboard, render it, check it",
        description="Versioned leaderboard tables (leaderboards/v<N>/<tier>.csv, the source of truth).",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="append score records (JSON from `disentbench evaluate --out`)")
    add.add_argument("records", nargs="+", type=Path, metavar="RECORD", help="score-record JSON files")
    add.add_argument("--dir", type=Path, default=None, help=DIR_HELP)
    add.add_argument("--replace", action="store_true", help="replace an existing row of the same run")
    add.add_argument("--no-render", action="store_true", help="do not re-render the Markdown tables and charts")
    add.add_argument("--force-collapsed", action="store_true",
                     help="add records with collapsed code dimensions too (their rows are marked in the table)")
    add.set_defaults(func=_add)

    render = sub.add_parser("render", help="render Markdown tables (mean ± std over seeds) and PNG charts")
    render.add_argument("--dir", type=Path, default=None, help=DIR_HELP)
    render.add_argument("--no-charts", action="store_true", help="Markdown only")
    render.set_defaults(func=_render)

    check = sub.add_parser(
        "check",
        help="validate the tables; with --subset ci, retrain and re-evaluate a fixed subset and compare",
    )
    check.add_argument("--dir", type=Path, default=None, help=DIR_HELP)
    check.add_argument("--tier", default=None, help="only this tier's table")
    check.add_argument(
        "--subset",
        choices=sorted(CI_SUBSETS),
        default=None,
        help="score regression: retrain the CI subset of the tier, re-evaluate, compare with the table",
    )
    check.add_argument("--configs", action="store_true",
                       help="also fail on stale rows: a row whose model config differs from the one its reference TOML "
                            "resolves to now (the committed code would not train it again)")
    check.add_argument("--tolerance", type=float, default=None, help="absolute tolerance per metric (regression)")
    check.add_argument("--work-dir", type=Path, default=None, help="where the regression trains (default: temporary)")
    check.add_argument("--write-baseline", action="store_true",
                       help="with --subset on a CPU without the table's BLAS kernel: write this platform's reference "
                            "records (leaderboards/v<N>/ci-baselines/) instead of comparing")
    check.set_defaults(func=_check)

    pop = sub.add_parser(
        "populate",
        help="train + evaluate the reference models of a tier and add the missing rows (resumable)",
    )
    pop.add_argument("--dir", type=Path, default=None, help=DIR_HELP)
    pop.add_argument("--tier", choices=TIERS, default="smoke", help="tier (default smoke)")
    pop.add_argument("--models", type=comma_names, help="comma-separated models (default: the smoke tier's)")
    pop.add_argument("--datasets", type=comma_names,
                     help="comma-separated datasets (default: the three procedural ones)")
    pop.add_argument("--seeds", type=comma_seeds, help="comma-separated seeds (default: the tier's)")
    pop.add_argument("--work-dir", type=Path, default=Path("runs"), help="run folders go here (default ./runs)")
    pop.add_argument("--limit", type=int, default=None, help="stop after this many new rows")
    pop.add_argument(
        "--reevaluate",
        action="store_true",
        help="also re-evaluate runs already in the table (from their trained run folder; ground-truth always) "
        "and replace their rows",
    )
    pop.set_defaults(func=_populate)

    cmp = sub.add_parser(
        "compare",
        help="is MODEL_A above MODEL_B on a metric? one-sided Welch t-test over seeds, one line per dataset",
    )
    cmp.add_argument("model_a", metavar="MODEL_A")
    cmp.add_argument("model_b", metavar="MODEL_B")
    cmp.add_argument("--metric", required=True, help="a metric column with a better direction (e.g. mig.score)")
    cmp.add_argument("--dataset", default=None, help="only this dataset (default: every dataset of the table)")
    cmp.add_argument("--tier", default="smoke", help="the tier's table (default smoke)")
    cmp.add_argument("--dir", type=Path, default=None, help=DIR_HELP)
    cmp.add_argument("--alpha", type=float, default=0.05,
                     help="significance level of the one-sided test (default 0.05)")
    cmp.set_defaults(func=_compare)


def _add(args: argparse.Namespace) -> int:
    from disentbench import leaderboard as lb

    records = [lb.load_record(p) for p in args.records]
    directory = args.dir or lb.version_dir()
    written = lb.add_records(records, directory, replace=args.replace, allow_collapsed=args.force_collapsed)
    for path in written:
        print(f"added {len(records)} record(s) -> {path}")
    if not args.no_render:
        for path in lb.render(directory):
            print(f"rendered {path}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from disentbench import leaderboard as lb

    for path in lb.render(args.dir or lb.version_dir(), charts=not args.no_charts):
        print(f"rendered {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from disentbench import leaderboard as lb

    directory = args.dir or lb.version_dir()
    tables = lb.check(directory, tier=args.tier)
    for table in tables:
        print(f"ok: {table.path} ({len(table.rows)} rows, {len(table.metric_columns)} metric columns)")
    if args.configs:
        stale = [line for table in tables for line in lb.stale_rows(table)]
        for line in stale:
            print(f"stale: {line}", file=sys.stderr)
        if stale:
            return 1
        print(f"ok: every row's model config is its reference config now ({sum(len(t.rows) for t in tables)} rows)")
    if args.subset is None:
        return 0
    from disentbench.leaderboard import regression_check

    tier = args.tier or "smoke"
    report = regression_check(directory, tier=tier, subset=args.subset, tolerance=args.tolerance, work_dir=args.work_dir,
                              write_baseline=args.write_baseline)
    print(report.summary())
    return 0 if report.ok else 1


def _populate(args: argparse.Namespace) -> int:
    import time

    from disentbench import evaluation as ev
    from disentbench import leaderboard as lb
    from disentbench import tiers

    directory = args.dir or lb.version_dir()
    models = args.models or list(tiers.smoke_models())
    datasets = args.datasets or list(tiers.SMOKE_DATASETS)
    seeds = args.seeds or list(tiers.TIER_SEEDS[args.tier])
    preset = tiers.protocol(args.tier)["preset"]
    path = lb.table_path(directory, args.tier)
    done = set()
    if path.exists():
        done = {(r["model"], r["dataset"], int(r["seed"])) for r in lb.read_table(path).rows if r["preset"] == preset}
    todo = [
        (m, d, s)
        for s in seeds
        for d in datasets
        for m in models
        if (m, d, s) not in done
        or (args.reevaluate and (m == ev.GROUND_TRUTH or ev.is_trained(m, args.work_dir / args.tier / f"{m}_{d}_{s}")))
    ]
    print(f"{args.tier} tier: {len(todo)} run(s) to do, {len(done)} already in {path}")
    for n, (model, dataset, seed) in enumerate(todo[: args.limit] if args.limit else todo, start=1):
        t0 = time.perf_counter()
        run_dir = args.work_dir / args.tier / f"{model}_{dataset}_{seed}"
        print(f"[{n}/{len(todo)}] training {model} on {dataset}, seed {seed} -> {run_dir}", flush=True)
        ckpt = ev.train_run(model, dataset, seed, args.tier, run_dir)
        print(f"[{n}/{len(todo)}] evaluating ({time.perf_counter() - t0:.0f} s so far)", flush=True)
        record = ev.evaluate_run(ckpt, model, dataset, seed, args.tier)
        ev.write_record(record, run_dir / "record.json")
        lb.add_records([record], directory, replace=args.reevaluate)
        lb.render(directory)
        print(ev.format_record(record), flush=True)
        print(f"[{n}/{len(todo)}] added to {path} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from disentbench import leaderboard as lb

    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must lie in (0, 1), got {args.alpha}")
    path = lb.table_path(args.dir or lb.version_dir(), args.tier)
    if not path.exists():
        raise FileNotFoundError(f"no table for tier {args.tier!r}: {path}")
    frame = lb.table_frame(lb.read_table(path))
    for comparison in lb.compare(frame, args.model_a, args.model_b, args.metric, args.dataset, alpha=args.alpha):
        print(comparison.line())
    return 0
