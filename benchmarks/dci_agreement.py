"""Agreement of DCI's importance estimators with the reference-parity one (gbt), with their times.

    .venv/bin/python benchmarks/dci_agreement.py [--kinds noisy,mixed,partial] [--estimators hist_gbt,lasso,random_forest]

On each representation (15,000 rows over the dSprites-like grid, seed 0) DCI runs with gbt and each estimator;
reported: D, C, informativeness (test), |ΔD|, |ΔC| against gbt, the Pearson correlation of the two importance
matrices (each normalised to sum 1) and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import grid_problem  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", default="noisy,mixed,partial")
    p.add_argument("--estimators", default="hist_gbt,lasso,random_forest")
    p.add_argument("--n-samples", type=int, default=15_000)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    from disentbench.metrics.dci import dci

    print("| representation | estimator | D | C | I test | abs ΔD | abs ΔC | corr(R, R_gbt) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    out = []
    for kind in args.kinds.split(","):
        _, factors, codes = grid_problem(kind, args.n_samples)
        runs = {}
        for est in ["gbt", *args.estimators.split(",")]:
            start = time.perf_counter()
            res = dci(factors, codes, estimator=est)
            runs[est] = (res, time.perf_counter() - start)
        ref = runs["gbt"][0]
        r_ref = ref.matrices["importance"] / ref.matrices["importance"].sum()
        for est, (res, seconds) in runs.items():
            r = res.matrices["importance"] / max(res.matrices["importance"].sum(), 1e-300)
            row = {
                "kind": kind, "estimator": est, "D": res["dci.disentanglement"], "C": res["dci.completeness"],
                "I_test": res["dci.informativeness_test"],
                "dD": abs(res["dci.disentanglement"] - ref["dci.disentanglement"]),
                "dC": abs(res["dci.completeness"] - ref["dci.completeness"]),
                "corr": float(np.corrcoef(r.ravel(), r_ref.ravel())[0, 1]), "seconds": seconds,
            }
            out.append(row)
            print(f"| {kind} | {est} | {row['D']:.3f} | {row['C']:.3f} | {row['I_test']:.3f} | {row['dD']:.3f} | "
                  f"{row['dC']:.3f} | {row['corr']:.3f} | {seconds:.1f} |", flush=True)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
