"""Print the seed-004 comparisons of leaderboards/README.md from a tier's CSV (mean ± sample std over seeds), built
from :func:`disentbench.leaderboard.summary` and :func:`disentbench.leaderboard.compare`.

    .venv/bin/python leaderboards/study_tables.py [leaderboards/v<N>/smoke.csv]   # default: the current version

1. The ordering claim (Table 5): multi-head > one-head > single-task > random on MIG and DCI, with the
   ground-truth codes beside them as the upper anchor. "ordering holds?" tests each adjacent pair of the ordering
   over seeds (one-sided Welch t-test in the metric's better direction, α = 0.05) and gives its p-value.
2. The downstream protocol (Table 1): test RMSE of multi-task heads on frozen codes (lower is better) for the
   ground truth and the representation learners (every registered auto-encoder), plus their disentanglement scores.
3. Seeds needed: per adjacent pair, how many seeds per model the one-sided Welch test needs (α = 0.05, power 0.8)
   to resolve a gap the size of the paper's Table 5 gap, with the spreads this table measured and with the paper's.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from disentbench import leaderboard as lb
from disentbench.leaderboard.compare import seeds_needed
from disentbench.metrics.registry import score_meaning
from disentbench.models import list_models

STUDY = ("multi-head", "one-head", "single-task", "random")
STUDY_METRICS = ("mig.score", "dci.disentanglement", "dci.completeness", "dci.informativeness_test", "multitask.rmse")
#: the ground truth and every registered auto-encoder (the representation learners of sec. 4.3 and
#: disentanglement_lib's), read from the model registry
LEARNERS = ("ground-truth", *(m.name for m in list_models(family="auto-encoder")))
LEARNER_METRICS = ("multitask.rmse", "mig.score", "dci.disentanglement", "dci.informativeness_test",
                   "factor_vae.eval_accuracy")
#: significance level of the ordering tests
ALPHA = 0.05
#: seed 004 Table 5, mean and std over 3 seeds on dSprites, Shapes3D, MPI3D ("single-task": the paper's
#: single-mean, the mean of ten single-task models, as is the smoke tier's single-task row from v2 on; v1's is task 0)
PAPER_TABLE5 = {
    "mig.score": {
        "multi-head": ((0.50, 0.11), (0.59, 0.04), (0.36, 0.04)),
        "one-head": ((0.42, 0.02), (0.44, 0.06), (0.30, 0.04)),
        "single-task": ((0.31, 0.03), (0.27, 0.03), (0.21, 0.02)),
        "random": ((0.00, 0.00), (0.00, 0.00), (0.00, 0.00)),
    },
    "dci.disentanglement": {
        "multi-head": ((0.04, 0.02), (0.08, 0.02), (0.04, 0.02)),
        "one-head": ((0.02, 0.01), (0.02, 0.01), (0.02, 0.00)),
        "single-task": ((0.01, 0.01), (0.01, 0.00), (0.01, 0.00)),
        "random": ((0.01, 0.01), (0.02, 0.01), (0.01, 0.00)),
    },
}
#: the paper's dataset (column of PAPER_TABLE5) that each procedural look-alike stands for
PAPER_COLUMN = {"dsprites-procedural": 0, "shapes3d-procedural": 1, "mpi3d-procedural": 2}


def cell(stats: pd.DataFrame, model: str, metric: str) -> str:
    """``mean ± std (n=…)`` of one model and metric from a summary indexed by (model, metric)."""
    if (model, metric) not in stats.index:
        return "—"
    row = stats.loc[(model, metric)]
    spread = f" ± {row['std']:.3f}" if row["n"] > 1 else ""
    return f"{row['mean']:.3f}{spread} (n={row['n']})"


def ordering_holds(frame: pd.DataFrame, metric: str) -> str:
    """Each adjacent pair of STUDY's order tested on ``metric`` over the seeds of ``frame`` (one dataset and preset):
    ``a > b p = …`` where the one-sided Welch test resolves it, ``a > b reversed (p = …)`` where it resolves the
    opposite order, ``no test`` with the seed counts where a model has one seed, else the verdict
    (``not resolved at n = …``) with the p-value. A pair with a model that has no value is left out; ``—`` when
    the metric has no direction or no pair can be tested."""
    if metric not in frame.columns or not score_meaning(metric).sign:
        return "—"
    present = set(frame.loc[frame[metric].notna(), "model"])
    parts = []
    for a, b in zip(STUDY, STUDY[1:]):
        if a not in present or b not in present:
            continue
        (c,) = lb.compare(frame, a, b, metric, alpha=ALPHA)
        if c.p < ALPHA:
            parts.append(f"{a} > {b} p = {c.p:.2g}")
        elif math.isnan(c.p):
            parts.append(f"{a} > {b} no test (n = {c.n_a}, {c.n_b})")
        elif c.p_reverse < ALPHA:
            parts.append(f"{a} > {b} reversed (p = {c.p_reverse:.2g})")
        else:
            parts.append(f"{a} > {b} {c.verdict} (p = {c.p:.2g})")
    return "; ".join(parts) or "—"


def table(title: str, models: tuple[str, ...], metrics: tuple[str, ...], stats: pd.DataFrame,
          frame: pd.DataFrame | None = None) -> list[str]:
    """A Markdown table of mean ± std cells; with ``frame`` (the rows of its dataset and preset), the ordering
    tests as the last column."""
    head = ["metric", *models] + (["ordering holds?"] if frame is not None else [])
    lines = [f"{title}", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in metrics:
        cells = [metric, *(cell(stats, m, metric) for m in models)]
        if frame is not None:
            cells.append(ordering_holds(frame, metric))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def seeds_table(title: str, stats: pd.DataFrame, dataset: str) -> list[str]:
    """Per metric of PAPER_TABLE5 and adjacent pair of STUDY: the paper's gap, the seeds per model that resolve it
    (one-sided Welch, α = ALPHA, power 0.8) with this table's spreads and with the paper's."""
    column = PAPER_COLUMN.get(dataset)
    if column is None:
        return []
    head = ["metric", "pair", "paper gap", "std here (a, b)", "seeds (spread here)", "std paper (a, b)",
            "seeds (paper spread)"]
    lines = [title, "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric, paper in PAPER_TABLE5.items():
        for a, b in zip(STUDY, STUDY[1:]):
            gap = round(paper[a][column][0] - paper[b][column][0], 10)
            paper_std = (paper[a][column][1], paper[b][column][1])
            here = [stats.loc[(m, metric), "std"] if (m, metric) in stats.index else float("nan") for m in (a, b)]

            def needed(std_a: float, std_b: float) -> str:
                if std_a != std_a or std_b != std_b:
                    return "—"
                n = seeds_needed(std_a, std_b, gap, alpha=ALPHA)
                return str(n) if n is not None else ("never (gap ≤ 0)" if gap <= 0 else "> 1000")

            lines.append(f"| {metric} | {a} > {b} | {gap:+.2f} | {here[0]:.3f}, {here[1]:.3f} | {needed(*here)} | "
                         f"{paper_std[0]:.2f}, {paper_std[1]:.2f} | {needed(*paper_std)} |")
    return lines + [""]


def study_stats(summary: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The summary of each (dataset, preset), indexed by (model, metric)."""
    return {key: group.set_index(["model", "metric"]) for key, group in summary.groupby(["dataset", "preset"])}


def main(path: Path) -> None:
    frame = lb.table_frame(lb.read_table(path))
    for (dataset, preset), stats in study_stats(lb.summary(frame)).items():
        rows = frame[(frame["dataset"] == dataset) & (frame["preset"] == preset)]
        print("\n".join(table(f"{dataset} ({preset}) — ordering (ground truth as the anchor)",
                              ("ground-truth", *STUDY), STUDY_METRICS, stats, rows)))
        print("\n".join(table(f"{dataset} ({preset}) — downstream RMSE and representation learners", LEARNERS,
                              LEARNER_METRICS, stats)))
        print("\n".join(seeds_table(f"{dataset} ({preset}) — seeds per model to resolve the paper's Table 5 gaps "
                                    f"(one-sided Welch, α = {ALPHA}, power 0.8; the paper's spreads are rounded to 0.01)",
                                    stats, dataset)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else lb.version_dir(Path(__file__).parent) / "smoke.csv")
