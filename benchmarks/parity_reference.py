"""Our scores vs disentanglement_lib's on the same representations, over several seeds.

    .venv/bin/python benchmarks/parity_reference.py --reference /tmp/dlib \
        [--kinds noisy,mixed,partial] [--seeds 3] [--dci-seeds 2] [--dci-kinds mixed] [--out parity.json]

The reference samples fresh points from the factor grid (``GridData``) with ``RandomState(seed)``; ours score,
for each seed, a fresh table of ``--n-samples`` rows drawn uniformly from the same grid codes, with
``random_state = seed`` (so both sides' spreads include sampling of the points). Agreement is
judged against the reference's own seed-to-seed spread: ``|mean ours - mean ref| <= range(ref)`` (max - min over
seeds) and, less strictly, within 2 standard errors of the difference. Needs absl-py and six (benchmark only).
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

from _data import GRID, grid_problem  # noqa: E402
from _reference import KEY_MAP, OURS_FOR, Reference  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", required=True, help="path to a disentanglement_lib checkout/export")
    p.add_argument("--kinds", default="noisy,mixed,partial")
    p.add_argument("--metrics", default="beta_vae,factor_vae,sap,mig,modularity,irs")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--dci-seeds", type=int, default=2, help="seeds for DCI (gbt; minutes per run)")
    p.add_argument("--dci-kinds", default="mixed", help="kinds on which DCI is compared ('' to skip)")
    p.add_argument("--n-samples", type=int, default=15_000)
    p.add_argument("--out", default=None, help="write all scores as JSON here")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    from disentbench.metrics import get_metric

    jobs = [(k, m, args.seeds) for k in args.kinds.split(",") for m in args.metrics.split(",")]
    jobs += [(k, "dci", args.dci_seeds) for k in args.dci_kinds.split(",") if k]
    raw: dict = {}
    rows = []
    print("| representation | score | ours mean ± sd | reference mean ± sd | |Δ| | ref range | within ref range | "
          "within 2 SE |", flush=True)
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for kind, metric, n_seeds in jobs:
        grid_codes = grid_problem(kind, 1)[0]
        ref = Reference(args.reference, GRID, grid_codes)
        ours_names = OURS_FOR.get(metric, (metric,))
        ours_s: dict = {}
        ref_s: dict = {}
        t0 = time.perf_counter()
        for seed in range(n_seeds):
            _, factors, codes = grid_problem(kind, args.n_samples, table_seed=seed)
            for name in ours_names:
                for key, value in get_metric(name).func(factors, codes, random_state=seed).scores.items():
                    ours_s.setdefault(key, []).append(value)
            try:
                ref_out = ref.run(metric, seed)
            except Exception as exc:  # the reference fails on some inputs (e.g. constant codes)
                ref_s["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
            for key, value in ref_out.items():
                if np.ndim(value) == 0:
                    ref_s.setdefault(key, []).append(float(value))
        raw[f"{kind}/{metric}"] = {"ours": ours_s, "reference": ref_s, "seconds": time.perf_counter() - t0}
        for ours_key, (ref_metric, ref_key) in KEY_MAP.items():
            if ref_metric != metric or ours_key not in ours_s:
                continue
            if "error" in ref_s:
                row = (kind, ours_key, f"{np.mean(ours_s[ours_key]):.4f}", f"reference failed: {ref_s['error']}",
                       "", "", "", "")
                rows.append(row)
                print("| " + " | ".join(row) + " |", flush=True)
                continue
            o, r = np.array(ours_s[ours_key]), np.array(ref_s[ref_key])
            diff = abs(o.mean() - r.mean())
            se = np.sqrt(o.var(ddof=1) / len(o) + r.var(ddof=1) / len(r)) if len(o) > 1 else float("nan")
            rng_ref = r.max() - r.min()
            row = (kind, ours_key, f"{o.mean():.4f} ± {o.std(ddof=1):.4f}", f"{r.mean():.4f} ± {r.std(ddof=1):.4f}",
                   f"{diff:.4f}", f"{rng_ref:.4f}", "yes" if diff <= rng_ref else "no",
                   "yes" if diff <= 2 * se else "no")
            rows.append(row)
            print("| " + " | ".join(row) + " |", flush=True)
        if args.out:
            tmp = args.out + ".tmp"
            with open(tmp, "w") as fh:
                json.dump({"rows": rows, "raw": raw, "seeds": args.seeds, "dci_seeds": args.dci_seeds}, fh, indent=1)
            os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
