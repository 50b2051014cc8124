"""``disentbench export RUN_DIR --format pt2|torchscript|safetensors --out PATH``: write a run's encoder."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained encoder (.pt2 program, safetensors folder or TorchScript)",
        description="Write the encoder of a run (RUN_DIR/model.pt, or a checkpoint file), mapping images in [0,1] "
        "of shape (B,C,64,64) to codes (B,d) (the mean for VAEs): pt2 (torch.export, any batch size; default), "
        "safetensors (a folder with model.safetensors + config.json, rebuilt through the model registry with no "
        "pickle: the format to exchange) or torchscript (deprecated in PyTorch, still read).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run folder (uses its model.pt) or a checkpoint file")
    p.add_argument("--format", choices=("pt2", "torchscript", "safetensors"), default=None,
                   help="output format (default pt2)")
    p.add_argument("--out", metavar="PATH", help="output file (pt2, torchscript) or folder (safetensors)")
    p.add_argument("--torchscript", metavar="OUT", help="alias of --format torchscript --out OUT")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from disentbench.export import export

    if args.torchscript is not None:
        if args.out is not None or args.format not in (None, "torchscript"):
            raise ValueError("--torchscript OUT is an alias of --format torchscript --out OUT; give one of them")
        args.format, args.out = "torchscript", args.torchscript
    if args.out is None:
        raise ValueError("export needs --out PATH")
    fmt = args.format or "pt2"
    out = export(args.run, args.out, fmt)
    print(f"wrote {fmt} encoder {out}")
    return 0
