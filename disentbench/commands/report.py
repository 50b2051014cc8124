"""``disentbench report RUN_DIR``: the per-run report page (a thin wrapper of :func:`disentbench.api.report`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a run's report: traversals, reconstructions, embeddings, heatmaps, curves (HTML + PNGs)",
        description="Draw the figures of a finished run from its folder (model.pt, log.jsonl) and its score record "
        "(default RUN_DIR/record.json, from `disentbench evaluate --out`): latent traversals (decoded, or the nearest "
        "evaluated images for a model without a decoder), reconstructions, 2-D embeddings of the codes per factor, "
        "the record's MI / DCI importance / Spearman matrices, training curves. Writes index.html, the PNGs and "
        "report.json (sizes, array hashes, seconds per part) into --out.",
    )
    parser.add_argument("run", type=Path, metavar="RUN_DIR", help="a finished run folder")
    parser.add_argument("--dataset", default=None, help="dataset name (default: the record's; checked against it)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default RUN_DIR/report)")
    parser.add_argument("--record", type=Path, default=None, help="score record (default RUN_DIR/record.json)")
    parser.add_argument("--decoder", type=Path, default=None, metavar="RUN",
                        help="a decoder-on-frozen run trained on this run: also draw decoded traversals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the base image, samples and t-SNE (default 0)")
    parser.add_argument("--embeddings", default=None, help="comma-separated: pca, tsne, umap (default: pca,tsne "
                        "and umap when umap-learn is installed)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from disentbench.api import report

    methods = [m.strip() for m in args.embeddings.split(",") if m.strip()] if args.embeddings else None
    summary = report(args.run, dataset=args.dataset, out=args.out, record=args.record, decoder=args.decoder,
                     seed=args.seed, embeddings=methods, progress=sys.stderr.isatty())
    out = args.out or args.run / "report"
    timing = ", ".join(f"{k} {v:.1f} s ({summary['cpu_s'][k]:.1f} s CPU)" for k, v in summary["timings_s"].items())
    print(f"report of {args.run}: {len(summary['figures'])} figures -> {out / 'index.html'} ({timing})")
    return 0
