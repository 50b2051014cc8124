"""``disentbench score FILE.npz``: score a precomputed code table with the metric engine.

The npz holds ``codes`` (n_samples, n_codes) and ``factors`` (n_samples, n_factors), and optionally
``factor_names``, ``factor_sizes`` (then ``factors`` may be omitted when the rows are the full factor
grid in row-major order) and ``discrete`` (one flag per factor). Heavy imports happen in the handler.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a code table (npz with codes and factors) with disentanglement metrics",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("file", nargs="?", type=Path, help="npz file with 'codes' and 'factors' (or 'factor_sizes')")
    parser.add_argument("--metrics", default="default",
                        help="comma-separated metric names, 'default' or 'all' (default: %(default)s)")
    parser.add_argument("--preset", default="reference", help="settings preset (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random_state given to every metric (default: 0)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write scores and settings as JSON to OUT")
    parser.add_argument("--list", action="store_true", help="list the metrics and presets, then exit")
    parser.set_defaults(func=run)


def load_code_table(path: Path) -> dict[str, Any]:
    """Read and check a code-table npz; returns codes, factors, factor_names and discrete flags."""
    import numpy as np

    from disentbench.factors import FactorSpace

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as exc:
        raise ValueError(f"{path}: cannot read as an npz of plain arrays (object arrays are refused): {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: not a readable npz file: {exc}") from None
    if "codes" not in arrays:
        raise ValueError(f"{path}: missing array 'codes'; arrays present: {sorted(arrays)}")
    codes = arrays["codes"]
    names = [str(n) for n in arrays["factor_names"].reshape(-1)] if "factor_names" in arrays else None
    if "factors" in arrays:
        factors = arrays["factors"]
    elif "factor_sizes" in arrays:
        sizes = [int(s) for s in arrays["factor_sizes"].reshape(-1)]
        space = FactorSpace(tuple(names or [f"factor{k}" for k in range(len(sizes))]), tuple(sizes))
        if codes.ndim < 1 or codes.shape[0] != space.n_points:
            raise ValueError(
                f"{path}: no 'factors' array and 'codes' has {codes.shape[0] if codes.ndim else 0} rows, "
                f"but the factor grid {tuple(sizes)} has {space.n_points} points; store 'factors' or the full grid"
            )
        factors = space.all_classes()
    else:
        raise ValueError(f"{path}: needs a 'factors' array or 'factor_sizes' (rows = full grid in row-major order)")
    n_factors = factors.shape[1] if factors.ndim == 2 else 1
    if names is not None and len(names) != n_factors:
        raise ValueError(f"{path}: factor_names has {len(names)} names for {n_factors} factors")
    discrete = None
    if "discrete" in arrays:
        discrete = arrays["discrete"].reshape(-1).astype(bool)
        if len(discrete) != n_factors:
            raise ValueError(f"{path}: 'discrete' has {len(discrete)} flags for {n_factors} factors")
    return {"codes": codes, "factors": factors, "factor_names": names, "discrete": discrete}


def format_table(results) -> str:
    """Plain-text table: one row per score key, with the metric's seconds on its first row."""
    rows = [("metric", "value", "seconds")]
    for result in results.values():
        for i, (key, value) in enumerate(result.scores.items()):
            rows.append((key, f"{value:.4f}", f"{result.elapsed_s:.3f}" if i == 0 else ""))
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>9}  {r[2]:>8}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    grouped: dict[str, list[str]] = {}
    for name, result in results.items():
        for warning in result.warnings:
            prefix, _, rest = warning.partition(": ")
            message = rest if prefix == name and rest else warning
            grouped.setdefault(message, [])
            if name not in grouped[message]:
                grouped[message].append(name)
    if grouped:
        lines += ["", "notes:", *(f"  {msg} [{', '.join(names)}]" for msg, names in grouped.items())]
    return "\n".join(lines)


def score_arrays(factors, codes, *, metrics: str, preset: str, seed: int, discrete=None):
    """Run the metrics with their warnings collected on the results (not printed twice)."""
    import warnings

    from disentbench.metrics import MetricWarning, compute_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return compute_metrics(factors, codes, metrics, preset=preset, random_state=seed, discrete=discrete)


def write_json_atomic(path: Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_text() -> str:
    from disentbench.metrics import list_metrics, list_presets

    lines = [f"{'metric':<14} {'family':<13} {'default':<8} {'properties':<38} description"]
    for info in list_metrics():
        lines.append(f"{info.name:<14} {info.family:<13} {'yes' if info.in_default else 'no':<8} "
                     f"{', '.join(info.properties):<38} {info.description}")
        defaults = ", ".join(f"{k}={v!r}" for k, v in info.defaults.items() if k not in ("discrete", "random_state"))
        lines.append(f"{'':<14} defaults: {defaults or '-'}")
        for preset, overrides in info.presets.items():
            lines.append(f"{'':<14} preset {preset}: " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))
    lines.append("")
    lines.append("presets: " + ", ".join(list_presets()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_text())
        return 0
    if args.file is None:
        raise ValueError("give an npz FILE to score (or --list)")
    from disentbench import __version__
    from disentbench.metrics import METRIC_DEFINITIONS_VERSION

    table = load_code_table(args.file)
    results = score_arrays(table["factors"], table["codes"], metrics=args.metrics, preset=args.preset,
                           seed=args.seed, discrete=table["discrete"])
    print(format_table(results))
    if args.json is not None:
        payload = {
            "disentbench_version": __version__,
            "metric_definitions_version": METRIC_DEFINITIONS_VERSION,
            "preset": args.preset,
            "seed": args.seed,
            "input": {
                "file": str(args.file),
                "n_samples": int(table["codes"].shape[0]),
                "n_codes": int(table["codes"].shape[1]) if table["codes"].ndim == 2 else 1,
                "n_factors": int(table["factors"].shape[1]) if table["factors"].ndim == 2 else 1,
                "factor_names": table["factor_names"],
            },
            "scores": {key: value for result in results.values() for key, value in result.scores.items()},
            "definition_versions": {name: result.definition_version for name, result in results.items()},
            "results": {name: result.to_dict() for name, result in results.items()},
        }
        write_json_atomic(args.json, payload)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
