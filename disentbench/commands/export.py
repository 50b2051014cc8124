"""``disentbench export RUN_DIR --torchscript encoder.pt``: write a run's encoder as TorchScript."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained encoder as TorchScript",
        description="Write the encoder of a run (RUN_DIR/model.pt, or a checkpoint file) as a TorchScript module "
        "mapping images in [0,1] of shape (B,C,64,64) to codes (B,d) (the mean for VAEs).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="run folder (uses its model.pt) or a checkpoint file")
    p.add_argument("--torchscript", required=True, metavar="OUT", help="output TorchScript file (e.g. encoder.pt)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from disentbench.export import export_torchscript

    out = export_torchscript(args.run, args.torchscript)
    print(f"wrote TorchScript encoder {out}")
    return 0
