"""Time every metric and the default suite on one representation; optionally the reference in the same run.

    .venv/bin/python benchmarks/bench_metrics.py [--reference /path/to/disentanglement_lib] \
        [--kind noisy] [--n-samples 15000] [--repeats 3] [--dci-repeats 1] [--out bench.json]

Input: codes (10 dims) over a dSprites-like grid (factor sizes 3, 6, 40, 32, 32); our metrics score a table of
``--n-samples`` rows drawn from it (15,000 = DCI's 10,000 train + 5,000 test), the reference samples the grid.
Each repeat runs our default suite (``compute_metrics``, per-metric times from it), our fast DCI, and, with
``--reference``, the reference's seven metrics (unsupervised_study_v1 settings), interleaved so that load from
other processes hits both. The reference-parity DCI (gbt) of both sides runs only in the first ``--dci-repeats``
repeats (minutes each; the order ours/reference alternates between repeats). Reported: median wall seconds per
metric, suite = sum of per-metric medians, the ratios, and — because a shared machine makes wall times of
minutes-long runs depend on what else runs — the CPU seconds of DCI: the reference's process time and the sum
and maximum of our per-factor fit CPU times (``fit_cpu_seconds``), from which the wall time on an otherwise idle
machine with c cores is about max(sum / c, max).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import GRID, grid_problem  # noqa: E402


def _median(times: dict, key: str) -> float:
    return float(np.median(times[key])) if times.get(key) else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default=None, help="disentanglement_lib checkout/export (needs absl-py, six)")
    p.add_argument("--kind", default="noisy", help="representation: noisy, mixed or partial")
    p.add_argument("--n-samples", type=int, default=15_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dci-repeats", type=int, default=1)
    p.add_argument("--out", default=None, help="write timings and scores as JSON here")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    from disentbench.metrics import compute_metrics, get_metric, list_metrics

    grid_codes, factors, codes = grid_problem(args.kind, args.n_samples)
    suite = [i.name for i in list_metrics(default_only=True)]
    ref = None
    if args.reference:
        from _reference import Reference

        ref = Reference(args.reference, GRID, grid_codes)
    ours: dict = {}
    theirs: dict = {}
    scores: dict = {"ours": {}, "reference": {}}
    get_metric("dci").func(factors[:200], codes[:200], n_train=100, n_test=50, estimator="hist_gbt")  # warm-up
    cpu: dict = {"reference_dci": [], "ours_dci_sum": [], "ours_dci_max": []}

    def run_ours(with_dci):
        names = [n for n in suite if with_dci or n != "dci"]
        results = compute_metrics(factors, codes, names)
        for name, res in results.items():
            ours.setdefault(name, []).append(res.elapsed_s)
            scores["ours"].update(res.scores)
        start = time.perf_counter()
        fast = get_metric("dci").func(factors, codes, estimator="hist_gbt")
        ours.setdefault("dci[fast]", []).append(time.perf_counter() - start)
        cpu.setdefault("ours_dci_fast_sum", []).append(float(fast.matrices["fit_cpu_seconds"].sum()))
        scores["ours"].update({f"{k}[fast]": v for k, v in fast.scores.items()})
        if with_dci:
            fit_cpu = results["dci"].matrices["fit_cpu_seconds"]
            cpu["ours_dci_sum"].append(float(fit_cpu.sum()))
            cpu["ours_dci_max"].append(float(fit_cpu.max()))
            scores["importance"] = {"gbt": results["dci"].matrices["importance"].tolist(),
                                    "hist_gbt": fast.matrices["importance"].tolist()}

    def run_reference(with_dci, rep):
        for metric in ref.METRICS:
            if metric == "dci" and not with_dci:
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            out = ref.run(metric, rep)
            theirs.setdefault(metric, []).append(time.perf_counter() - start)
            if metric == "dci":
                cpu["reference_dci"].append(time.process_time() - start_cpu)
            scores["reference"].update({f"{metric}.{k}": float(v) for k, v in out.items() if np.ndim(v) == 0})

    for rep in range(args.repeats):
        with_dci = rep < args.dci_repeats
        if ref is not None and rep % 2 == 1:
            run_reference(with_dci, rep)
            run_ours(with_dci)
        else:
            run_ours(with_dci)
            if ref is not None:
                run_reference(with_dci, rep)
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
          f"input {args.n_samples} x {codes.shape[1]} codes, grid {GRID}, kind {args.kind}; "
          f"median of {args.repeats} runs (DCI gbt: {args.dci_repeats})\n")
    print("| metric | ours (s) | reference (s) |\n|---|---|---|")
    for name in sorted(ours):
        ref_name = "modularity" if name == "explicitness" else name
        r = _median(theirs, ref_name) if ref_name in theirs and name not in ("explicitness",) else float("nan")
        print(f"| {name} | {_median(ours, name):.3f} | {'' if np.isnan(r) else f'{r:.3f}'} |")
    suite_s = sum(_median(ours, n) for n in suite)
    summary = {"ours_default_suite_s": suite_s, "ours_dci_s": _median(ours, "dci"),
               "ours_dci_fast_s": _median(ours, "dci[fast]"),
               "ours_information_metrics_s": {n: _median(ours, n) for n in suite
                                              if get_metric(n).family == "information"}}
    print(f"\nours: default suite ({len(suite)} metrics) {suite_s:.2f} s; without DCI "
          f"{suite_s - summary['ours_dci_s']:.2f} s")
    if theirs:
        ref_suite = sum(_median(theirs, m) for m in theirs)
        summary.update(reference_suite_s=ref_suite, reference_dci_s=_median(theirs, "dci"),
                       suite_speedup=ref_suite / suite_s,
                       dci_speedup=_median(theirs, "dci") / summary["ours_dci_s"],
                       fast_dci_speedup=_median(theirs, "dci") / summary["ours_dci_fast_s"])
        print(f"reference: suite ({len(theirs)} metrics) {ref_suite:.2f} s")
        print(f"speedup: default suite {summary['suite_speedup']:.2f}x; DCI (gbt) {summary['dci_speedup']:.2f}x; "
              f"fast DCI vs reference DCI {summary['fast_dci_speedup']:.1f}x")
    med = {k: float(np.median(v)) for k, v in cpu.items() if v}
    summary["dci_cpu_s"] = med
    if "ours_dci_sum" in med:
        cores = os.cpu_count() or 1
        idle_wall = max(med["ours_dci_sum"] / cores, med["ours_dci_max"])
        summary["ours_dci_idle_wall_estimate_s"] = idle_wall
        print(f"DCI CPU seconds (median): ours {med['ours_dci_sum']:.1f} summed over factors, longest fit "
              f"{med['ours_dci_max']:.1f} -> idle-machine wall ~{idle_wall:.1f} s on {cores} cores")
        if "reference_dci" in med:
            ratio = med["reference_dci"] / idle_wall
            summary["dci_cpu_speedup_estimate"] = ratio
            print(f"  reference DCI process time {med['reference_dci']:.1f} s -> DCI speedup on an idle machine "
                  f"~{ratio:.2f}x; fast DCI: {med['reference_dci'] / med['ours_dci_fast_sum']:.1f}x less CPU")
    print("\nscores (seed 0 / last repeat):")
    for key in sorted(scores["ours"]):
        print(f"  {key}: {scores['ours'][key]:.4f}")
    for key in sorted(scores["reference"]):
        print(f"  reference {key}: {scores['reference'][key]:.4f}")
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"args": vars(args), "ours_s": ours, "reference_s": theirs, "summary": summary,
                       "scores": scores}, fh, indent=1)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
