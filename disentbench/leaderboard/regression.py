"""The CI score regression: retrain a fixed subset of a tier's runs, re-evaluate them with the tier's protocol and
compare every metric with the committed table (``disentbench leaderboard check --subset ci``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from disentbench import evaluation as ev
from disentbench.leaderboard.table import read_table, table_path
from disentbench.tiers import CI_SUBSETS, CI_TOLERANCE, TABLE_BLAS_KERNEL, blas_kernels, protocol


@dataclass
class RegressionReport:
    """Per-run, per-metric comparison of re-evaluated scores with the committed table."""

    tolerance: float
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_abs_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        verdict = "PASS" if self.ok else f"FAIL ({len(self.failures)} problem(s))"
        return "\n".join([*self.lines, *self.failures,
                          f"score regression: {verdict}; max |diff| {self.max_abs_diff:.3g}, tolerance {self.tolerance}"])


def regression_check(directory: Path, *, tier: str = "smoke", subset: str = "ci", tolerance: float | None = None,
                     work_dir: Path | None = None) -> RegressionReport:
    """Retrain the runs of ``CI_SUBSETS[subset]``, re-evaluate them, compare every metric with the table."""
    tol = CI_TOLERANCE if tolerance is None else float(tolerance)
    table = read_table(table_path(Path(directory), tier))
    preset = protocol(tier)["preset"]
    report = RegressionReport(tol)
    kernels = blas_kernels()
    if any(k.lower() != TABLE_BLAS_KERNEL.lower() for k in kernels):
        report.failures.append(f"this process uses OpenBLAS kernel(s) {', '.join(kernels)}, but {table.path} was "
                               f"computed with {TABLE_BLAS_KERNEL}: trained rows cannot match; rerun with "
                               f"OPENBLAS_CORETYPE={TABLE_BLAS_KERNEL} (an AVX-512 CPU)")
        return report
    with tempfile.TemporaryDirectory(prefix="disentbench-ci-") as tmp:
        root = Path(work_dir or tmp)
        for model, dataset, seed in CI_SUBSETS[subset]:
            rows = [r for r in table.rows if (r["model"], r["dataset"], r["seed"], r["preset"]) == (model, dataset, str(seed), preset)]
            if not rows:
                report.failures.append(f"{model}/{dataset}/seed {seed}: no committed row in {table.path} (preset {preset})")
                continue
            t0 = time.perf_counter()
            ckpt = ev.train_run(model, dataset, seed, tier, root / f"{model}_{dataset}_{seed}")
            record = ev.evaluate_run(ckpt, model, dataset, seed, tier)
            if record["dataset_version"] != rows[0]["dataset_version"]:
                report.failures.append(f"{model}/{dataset}: dataset version {record['dataset_version']} "
                                       f"!= committed {rows[0]['dataset_version']}")
            worst = 0.0
            for column in table.metric_columns:
                old, new = rows[0].get(column, ""), record["metrics"].get(column)
                if old == "" and new is None:
                    continue
                if old == "" or new is None:
                    report.failures.append(f"{model}/{dataset}/seed {seed}: metric {column} "
                                           f"{'missing from the table' if old == '' else 'no longer computed'}")
                    continue
                diff = abs(float(old) - float(new))
                worst = max(worst, diff)
                if diff > tol:
                    report.failures.append(f"{model}/{dataset}/seed {seed}: {column} = {new:.6f}, "
                                           f"committed {float(old):.6f} (|diff| {diff:.3g} > {tol})")
            extra = sorted(set(record["metrics"]) - set(table.metric_columns))
            if extra:
                report.failures.append(f"{model}/{dataset}/seed {seed}: new metrics not in the table: {extra[:5]}")
            report.max_abs_diff = max(report.max_abs_diff, worst)
            report.lines.append(f"{model}/{dataset}/seed {seed}: max |diff| {worst:.3g} over "
                                f"{len(table.metric_columns)} metrics ({time.perf_counter() - t0:.0f} s)")
    return report
