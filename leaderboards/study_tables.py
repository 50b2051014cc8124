"""Print the seed-004 comparisons of leaderboards/README.md from a tier's CSV (mean ± sample std over seeds), built
from :func:`disentbench.leaderboard.summary`.

    .venv/bin/python leaderboards/study_tables.py [leaderboards/v1/smoke.csv]

1. The ordering claim (Table 5): multi-head > one-head > single-task > random on MIG and DCI, with the
   ground-truth codes beside them as the upper anchor.
2. The downstream protocol (Table 1): test RMSE of multi-task heads on frozen codes (lower is better) for the
   ground truth and the representation learners (every registered auto-encoder), plus their disentanglement scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from disentbench import leaderboard as lb
from disentbench.metrics.registry import score_meaning
from disentbench.models import list_models

STUDY = ("multi-head", "one-head", "single-task", "random")
STUDY_METRICS = ("mig.score", "dci.disentanglement", "dci.completeness", "dci.informativeness_test", "multitask.rmse")
#: the ground truth and every registered auto-encoder (the representation learners of sec. 4.3 and
#: disentanglement_lib's), read from the model registry
LEARNERS = ("ground-truth", *(m.name for m in list_models(family="auto-encoder")))
LEARNER_METRICS = ("multitask.rmse", "mig.score", "dci.disentanglement", "dci.informativeness_test",
                   "factor_vae.eval_accuracy")


def cell(stats: pd.DataFrame, model: str, metric: str) -> str:
    """``mean ± std (n=…)`` of one model and metric from a summary indexed by (model, metric)."""
    if (model, metric) not in stats.index:
        return "—"
    row = stats.loc[(model, metric)]
    spread = f" ± {row['std']:.3f}" if row["n"] > 1 else ""
    return f"{row['mean']:.3f}{spread} (n={row['n']})"


def ordering_holds(stats: pd.DataFrame, metric: str) -> str:
    """Whether the means follow STUDY's order on ``metric`` in its better direction."""
    sign = score_meaning(metric).sign  # -1: lower is better, the best model has the lowest value; 0: no order
    if not sign or any((m, metric) not in stats.index for m in STUDY):
        return "—"
    means = [stats.loc[(m, metric), "mean"] for m in STUDY]
    return "yes" if all(sign * (a - b) > 0 for a, b in zip(means, means[1:])) else "no"


def table(title: str, models: tuple[str, ...], metrics: tuple[str, ...], stats: pd.DataFrame,
          with_ordering: bool) -> list[str]:
    head = ["metric", *models] + (["ordering holds?"] if with_ordering else [])
    lines = [f"{title}", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in metrics:
        cells = [metric, *(cell(stats, m, metric) for m in models)]
        if with_ordering:
            cells.append(ordering_holds(stats, metric))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def study_stats(summary: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The summary of each (dataset, preset), indexed by (model, metric)."""
    return {key: group.set_index(["model", "metric"]) for key, group in summary.groupby(["dataset", "preset"])}


def main(path: Path) -> None:
    for (dataset, preset), stats in study_stats(lb.summary(lb.table_frame(lb.read_table(path)))).items():
        print("\n".join(table(f"{dataset} ({preset}) — ordering (ground truth as the anchor)",
                              ("ground-truth", *STUDY), STUDY_METRICS, stats, True)))
        print("\n".join(table(f"{dataset} ({preset}) — downstream RMSE and representation learners", LEARNERS,
                              LEARNER_METRICS, stats, False)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "v1" / "smoke.csv")
