"""``disentbench train MODEL --dataset NAME --seed N --tier smoke|paper --out RUN_DIR``: the reference trainers."""

from __future__ import annotations

from disentbench.models import MODEL_NAMES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a reference model (seed 004) into a run folder",
        description="Train a reference model of seed 004 with its config in reference_models/MODEL.toml. "
        "The run folder gets config.json, log.jsonl, checkpoint.pt (for --resume), model.pt and summary.json. "
        "heads-on-frozen / decoder-on-frozen train task heads (Table 1) or a decoder (Table 4) on the frozen "
        "encoder of another run (--encoder RUN_DIR).",
    )
    p.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(MODEL_NAMES)}")
    p.add_argument("--dataset", required=True, help="dataset name (e.g. dsprites-procedural, shapes3d-procedural)")
    p.add_argument("--tasks", metavar="TASKS.h5", help="task set file (task models; default: the dataset's default "
                   "set, 10 tasks, seed 0, generated in-process)")
    p.add_argument("--encoder", metavar="RUN_DIR", help="run folder or checkpoint whose encoder the frozen protocols use")
    p.add_argument("--task-index", type=int, help="single-task only: which task of the set to learn (default 0)")
    p.add_argument("--seed", type=int, default=0, help="training seed: initialisation, data order, sampling (default 0)")
    p.add_argument("--tier", choices=("smoke", "paper"), default="smoke", help="training budget (default smoke)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch.get_num_threads())")
    p.add_argument("--config", metavar="TOML", help="use this config file instead of reference_models/MODEL.toml")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create (or to continue with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    from disentbench.checkpoint import CheckpointWriteError
    from disentbench.training import TrainingDiverged, load_reference, resolve_spec, train

    if args.model not in MODEL_NAMES:
        raise ValueError(f"unknown model {args.model!r}; known models: {', '.join(MODEL_NAMES)}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    spec = resolve_spec(args.model, tier=args.tier, seed=args.seed, dataset=args.dataset, device=args.device,
                        threads=args.threads, reference=load_reference(args.model, args.config),
                        task_index=args.task_index)
    try:
        summary = train(spec, args.out, tasks_path=args.tasks, encoder_path=args.encoder, resume=args.resume,
                        progress=None if not args.no_progress else False)
    except TrainingDiverged as exc:
        print(f"disentbench train: {exc}", file=sys.stderr)
        return 3
    except CheckpointWriteError as exc:
        print(f"disentbench train: {exc.strerror}; resume later with --resume", file=sys.stderr)
        return 1
    shown = {k: v for k, v in summary["metrics"].items() if not isinstance(v, list)}
    print(f"trained {summary['model']} on {summary['dataset']} (seed {summary['seed']}, tier {summary['tier']}): "
          f"{summary['steps']} steps, {summary['images_per_s']} images/s; test {shown}; wrote {summary['checkpoint']}")
    return 0
