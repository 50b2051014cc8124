"""``disentbench score FILE.npz``: score a precomputed code table with the metric engine.

The npz holds ``codes`` (n_samples, n_codes) and ``factors`` (n_samples, n_factors), and optionally
``factor_names``, ``factor_sizes`` (then ``factors`` may be omitted when the rows are the full factor
grid in row-major order) and ``discrete`` (one flag per factor). Factors with non-integer values must be
named continuous (``--continuous-factors``, or ``discrete`` in the file). Heavy imports happen in the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
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
    parser.add_argument("--continuous-factors", metavar="K1,K2", type=lambda text: [k for k in text.split(",") if k],
                        help="factors (names or 0-based columns) that are continuous: binned by the information "
                             "metrics, regressed by the predictor metrics, refused by factor_vae/beta_vae; "
                             "replaces the file's 'discrete' flags; needed for non-integer factor values")
    parser.add_argument("--n-train", type=int, metavar="N",
                        help="training rows of the metrics that split rows (dci, sap, explicitness, "
                             "informativeness; default 10000)")
    parser.add_argument("--n-test", type=int, metavar="N", help="held-out rows of those metrics (default 5000)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write scores and settings as JSON to OUT")
    parser.add_argument("--list", action="store_true", help="list the metrics and presets, then exit")
    parser.set_defaults(func=run)


def load_code_table(path: Path) -> dict[str, Any]:
    """Read and check a code-table npz; returns codes, factors, factor_names and discrete flags."""
    import numpy as np

    from disentbench.evaluation.sources import check_npz
    from disentbench.factors import FactorSpace

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    check_npz(path)
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


def discrete_flags(table: dict[str, Any], continuous: list[str] | None, path: Path):
    """Per-factor discrete flags from ``--continuous-factors`` (else the file's); refuses unflagged float factors."""
    import numpy as np

    from disentbench.metrics._validation import non_integer_columns

    factors = np.asarray(table["factors"], dtype=np.float64).reshape(len(table["factors"]), -1)
    names = table["factor_names"] or [str(k) for k in range(factors.shape[1])]
    flags = np.ones(len(names), dtype=bool) if table["discrete"] is None else table["discrete"].copy()
    if continuous is not None:
        flags[:] = True
        for key in continuous:
            if key not in names and not (key.isdigit() and int(key) < len(names)):
                raise ValueError(f"--continuous-factors: no factor {key!r} in {path}; factors: {', '.join(names)}")
            flags[names.index(key) if key in names else int(key)] = False
    fractional = [names[k] for k in np.flatnonzero(flags & non_integer_columns(factors))]
    if fractional:
        raise ValueError(
            f"{path}: factors {', '.join(fractional)} hold non-integer values; name the continuous ones with "
            f"--continuous-factors {','.join(fractional)} (or store class indices)"
        )
    return flags


def sample_overrides(names: list[str], n_train: int | None, n_test: int | None) -> dict[str, dict[str, int]]:
    """``--n-train`` / ``--n-test`` for every selected metric that splits rows into train and test."""
    from disentbench.metrics import get_metric

    given = {key: value for key, value in (("n_train", n_train), ("n_test", n_test)) if value is not None}
    for key, value in given.items():
        if value < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be a positive number of rows, got {value}")
    split = [name for name in names if {"n_train", "n_test"} <= get_metric(name).defaults.keys()]
    return {name: dict(given) for name in split} if given else {}


def score_arrays(factors, codes, *, metrics: str, preset: str, seed: int, discrete=None, overrides=None):
    """Run the metrics with their warnings collected on the results (not printed twice); the pre-flight
    memory estimate is printed to stderr before anything is computed."""
    import warnings

    from disentbench.api import score
    from disentbench.metrics import InputSizeWarning, MetricWarning

    def show(message, *args, **kwargs):
        print(f"disentbench score: note: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        warnings.simplefilter("always", InputSizeWarning)
        warnings.showwarning = show
        return score(factors, codes, metrics=metrics, preset=preset, seed=seed, discrete=discrete, overrides=overrides)


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
    from disentbench.fileio import AtomicWriteError, atomic_write_text
    from disentbench.metrics import METRIC_DEFINITIONS_VERSION
    from disentbench.metrics.registry import resolve_selection

    if args.json is not None and args.json.is_dir():
        raise ValueError(f"--json {args.json} is a directory; give a file name such as {args.json / 'scores.json'}")
    table = load_code_table(args.file)
    discrete = discrete_flags(table, args.continuous_factors, args.file)
    overrides = sample_overrides(resolve_selection(args.metrics), args.n_train, args.n_test)
    results = score_arrays(table["factors"], table["codes"], metrics=args.metrics, preset=args.preset,
                           seed=args.seed, discrete=discrete, overrides=overrides)
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
                "discrete": discrete.tolist(),
            },
            "scores": {key: value for result in results.values() for key, value in result.scores.items()},
            "definition_versions": {name: result.definition_version for name, result in results.items()},
            "results": {name: result.to_dict() for name, result in results.items()},
        }
        try:
            atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
        except AtomicWriteError as exc:
            raise ValueError(f"--json: {exc}") from None
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
