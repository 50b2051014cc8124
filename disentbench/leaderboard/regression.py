"""The CI score regression: retrain a fixed subset of a tier's runs, re-evaluate them with the tier's protocol and
compare every metric with a committed reference (``disentbench leaderboard check --subset ci``).

The reference is the tier's table when this process runs the BLAS kernel the table was computed with
(:data:`~disentbench.tiers.TABLE_BLAS_KERNEL`). On a CPU that cannot run it (no AVX-512), it is a committed score
record per run of the subset, made on such a platform by ``check --write-baseline`` from the committed code:
``<leaderboard dir>/ci-baselines/<platform key>/<tier>_<model>_<dataset>_<seed>.json`` (:func:`platform_key`). Training
ends elsewhere under another kernel (last-bit differences grow over a few hundred steps), so each platform compares
with its own reference, and a platform without one fails in one line that says how to make it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from disentbench import evaluation as ev
from disentbench.leaderboard.table import read_table, table_path
from disentbench.tiers import CI_SUBSETS, CI_TOLERANCE, TABLE_BLAS_KERNEL, blas_kernels, protocol, torch_cpu_capability

BASELINES = "ci-baselines"


@dataclass
class RegressionReport:
    """Per-run, per-metric comparison of re-evaluated scores with the committed reference."""

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


def platform_key() -> str:
    """``<OpenBLAS kernel(s)>-<PyTorch CPU capability>``, e.g. ``Haswell-AVX2``: what decides the last bits of a run."""
    return f"{'+'.join(blas_kernels()) or 'none'}-{torch_cpu_capability()}"


def uses_table_kernel() -> bool:
    kernels = blas_kernels()
    return bool(kernels) and all(k.lower() == TABLE_BLAS_KERNEL.lower() for k in kernels)


def baseline_path(directory: Path, tier: str, model: str, dataset: str, seed: int) -> Path:
    return Path(directory) / BASELINES / platform_key() / f"{tier}_{model}_{dataset}_{seed}.json"


def _table_reference(table, preset: str, model: str, dataset: str, seed: int):
    """(metric -> float or None, dataset version, where) from the tier's table, or None without a row."""
    rows = [r for r in table.rows if (r["model"], r["dataset"], r["seed"], r["preset"]) == (model, dataset, str(seed), preset)]
    if not rows:
        return None
    metrics = {c: (float(rows[0][c]) if rows[0].get(c, "") != "" else None) for c in table.metric_columns}
    return metrics, rows[0]["dataset_version"], str(table.path)


def _baseline_reference(path: Path):
    if not path.is_file():
        return None
    record = ev.read_record(path)
    return dict(record["metrics"]), record["dataset_version"], str(path)


def compare(report: RegressionReport, name: str, reference, record: dict) -> float:
    """Add ``record``'s differences from ``reference`` (metrics, dataset version, where) to ``report``; the worst |diff|."""
    metrics, version, where = reference
    if record["dataset_version"] != version:
        report.failures.append(f"{name}: dataset version {record['dataset_version']} != committed {version} ({where})")
    worst = 0.0
    for column, old in metrics.items():
        new = record["metrics"].get(column)
        if old is None and new is None:
            continue
        if old is None or new is None:
            report.failures.append(f"{name}: metric {column} {'missing from ' + where if old is None else 'no longer computed'}")
            continue
        diff = abs(float(old) - float(new))
        worst = max(worst, diff)
        if diff > report.tolerance:
            report.failures.append(f"{name}: {column} = {new:.6f}, committed {float(old):.6f} "
                                   f"(|diff| {diff:.3g} > {report.tolerance})")
    extra = sorted(set(record["metrics"]) - set(metrics))
    if extra:
        report.failures.append(f"{name}: new metrics not in {where}: {extra[:5]}")
    report.max_abs_diff = max(report.max_abs_diff, worst)
    return worst


def regression_check(directory: Path, *, tier: str = "smoke", subset: str = "ci", tolerance: float | None = None,
                     work_dir: Path | None = None, write_baseline: bool = False) -> RegressionReport:
    """Retrain the runs of ``CI_SUBSETS[subset]``, re-evaluate them and compare every metric with the reference of
    this platform (module docstring). ``write_baseline``: instead, write this platform's reference records (refused
    under the table's own kernel, whose reference is the table)."""
    report = RegressionReport(CI_TOLERANCE if tolerance is None else float(tolerance))
    preset = protocol(tier)["preset"]
    on_table = uses_table_kernel()
    if write_baseline and on_table:
        report.failures.append(f"this process runs the table's kernel {TABLE_BLAS_KERNEL}: the table is its reference")
        return report
    table = read_table(table_path(Path(directory), tier)) if on_table else None
    plan = []
    for model, dataset, seed in CI_SUBSETS[subset]:
        path = baseline_path(directory, tier, model, dataset, seed)
        reference = None if write_baseline else (
            _table_reference(table, preset, model, dataset, seed) if on_table else _baseline_reference(path))
        if reference is None and not write_baseline:
            report.failures.append(
                f"{model}/{dataset}/seed {seed}: no committed reference for platform {platform_key()} ("
                + (f"no row in {table_path(Path(directory), tier)}, preset {preset})" if on_table else
                   f"{path} is missing; the table needs OpenBLAS kernel {TABLE_BLAS_KERNEL}, an AVX-512 CPU: make this "
                   f"platform's with `disentbench leaderboard check --tier {tier} --subset {subset} --write-baseline` "
                   f"from the committed code and commit it)"))
        plan.append((model, dataset, seed, path, reference))
    if not report.ok:
        return report
    with tempfile.TemporaryDirectory(prefix="disentbench-ci-") as tmp:
        root = Path(work_dir or tmp)
        for model, dataset, seed, path, reference in plan:
            t0 = time.perf_counter()
            ckpt = ev.train_run(model, dataset, seed, tier, root / f"{model}_{dataset}_{seed}")
            record = ev.evaluate_run(ckpt, model, dataset, seed, tier, bootstrap_resamples=0)  # scores only
            name = f"{model}/{dataset}/seed {seed}"
            if write_baseline:
                path.parent.mkdir(parents=True, exist_ok=True)
                ev.write_record(record, path)
                report.lines.append(f"{name}: wrote {path} ({time.perf_counter() - t0:.0f} s)")
                continue
            worst = compare(report, name, reference, record)
            report.lines.append(f"{name}: max |diff| {worst:.3g} over {len(reference[0])} metrics against "
                                f"{reference[2]} ({time.perf_counter() - t0:.0f} s)")
    return report
