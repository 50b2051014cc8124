"""``disentbench train MODEL --dataset NAME --seed N --tier TIER --out RUN_DIR``: the reference trainers;
``disentbench train --list``: the model registry."""

from __future__ import annotations

import sys

from disentbench.tiers import TIERS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a registered model into a run folder (--list shows them)",
        description="Train a registered model with its config in reference_models/MODEL.toml. The run folder gets "
        "config.json, log.jsonl, checkpoint.pt (for --resume), model.pt and summary.json. Staged models (e.g. "
        "heads-on-frozen, decoder-on-frozen) train on the frozen model of another run (--from RUN_DIR).",
    )
    p.add_argument("model", metavar="MODEL", nargs="?", help="a registered model (see --list)")
    p.add_argument("--list", action="store_true", help="print every registered model: name, family, needs, source")
    p.add_argument("--dataset", help="dataset name (e.g. dsprites-procedural, shapes3d-procedural)")
    p.add_argument("--tasks", metavar="TASKS.h5", help="task set file (task models; default: the dataset's default "
                   "set, 10 tasks, seed 0, generated in-process)")
    p.add_argument("--from", "--encoder", dest="upstream", metavar="RUN_DIR",
                   help="the upstream run (folder or checkpoint) a staged model trains on (--encoder is an alias)")
    p.add_argument("--task-index", type=int, help="task models: train on this one task of the set")
    p.add_argument("--seed", type=int, default=0, help="training seed: initialisation, data order, sampling (default 0)")
    p.add_argument("--tier", choices=TIERS, default="smoke", help="training budget (default smoke)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch.get_num_threads())")
    p.add_argument("--config", metavar="TOML", help="use this config file instead of reference_models/MODEL.toml")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder to create (or to continue with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--metrics-every", type=int, default=0, metavar="N",
                   help="log MIG and the fast DCI on a fixed 2,000-point grid sample every N steps (default 0: off)")
    p.set_defaults(func=_run)


def format_model_list() -> str:
    """One line per registered model: name, family, what it needs in a batch, leaderboard entry or protocol (and what
    its row is when not one run), source."""
    from disentbench.models import list_models
    from disentbench.models.registry import ROW_RUN

    rows = [(m.name, m.family, ",".join(m.needs) or "-",
             ("yes" if m.row == ROW_RUN else f"yes, {m.row}") if m.leaderboard else "no", m.source)
            for m in list_models()]
    head = ("model", "family", "needs", "leaderboard", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in [head, *rows])


def _run(args) -> int:
    from disentbench.api import train
    from disentbench.fileio import AtomicWriteError
    from disentbench.training import TrainingDiverged

    if args.list:
        print(format_model_list())
        return 0
    missing = [flag for flag, value in (("MODEL", args.model), ("--dataset", args.dataset), ("--out", args.out))
               if value is None]
    if missing:
        raise ValueError(f"train needs {', '.join(missing)} (or --list)")
    resume_hint = f"continue with: disentbench train {args.model} ... --out {args.out} --resume"
    try:
        summary = train(args.model, args.dataset, args.out, seed=args.seed, tier=args.tier, tasks=args.tasks,
                        upstream=args.upstream, task_index=args.task_index, device=args.device, threads=args.threads,
                        config=args.config, resume=args.resume, progress=None if not args.no_progress else False,
                        metrics_every=args.metrics_every)
    except TrainingDiverged as exc:
        print(f"disentbench train: {exc}", file=sys.stderr)
        return 3
    except AtomicWriteError as exc:
        print(f"disentbench train: {exc.strerror}; {resume_hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"disentbench train: {exc}; {resume_hint}", file=sys.stderr)
        return 130
    if summary.get("already_complete"):
        print(f"{args.out} is already complete ({summary['steps']} steps); nothing to do: {summary['checkpoint']}")
        return 0
    shown = {k: v for k, v in summary["metrics"].items() if not isinstance(v, list)}
    print(f"trained {summary['model']} on {summary['dataset']} (seed {summary['seed']}, tier {summary['tier']}): "
          f"{summary['steps']} steps, {summary['images_per_s']} images/s; test {shown}; wrote {summary['checkpoint']}")
    return 0
