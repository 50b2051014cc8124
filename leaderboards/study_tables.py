"""Print the seed-004 comparisons of leaderboards/README.md from a tier's CSV (mean ± sample std over seeds).

    .venv/bin/python leaderboards/study_tables.py [leaderboards/v1/smoke.csv]

1. The ordering claim (Table 5): multi-head > one-head > single-task > random on MIG and DCI, with the
   ground-truth codes beside them as the upper anchor.
2. The downstream protocol (Table 1): test RMSE of multi-task heads on frozen codes (lower is better) for the
   ground truth and the representation learners, plus their disentanglement scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

from disentbench import leaderboard as lb
from disentbench.metrics.registry import score_meaning

STUDY = ("multi-head", "one-head", "single-task", "random")
STUDY_METRICS = ("mig.score", "dci.disentanglement", "dci.completeness", "dci.informativeness_test", "multitask.rmse")
LEARNERS = ("ground-truth", "ae", "vae", "beta-vae", "factor-vae")
LEARNER_METRICS = ("multitask.rmse", "mig.score", "dci.disentanglement", "dci.informativeness_test",
                   "factor_vae.eval_accuracy")


def cell(group: lb.Aggregate | None, metric: str) -> str:
    if group is None or metric not in group.mean:
        return "—"
    n = group.count[metric]
    spread = f" ± {group.std[metric]:.3f}" if n > 1 else ""
    return f"{group.mean[metric]:.3f}{spread} (n={n})"


def ordering_holds(groups: dict[str, lb.Aggregate], metric: str) -> str:
    means = [groups[m].mean.get(metric) if m in groups else None for m in STUDY]
    sign = score_meaning(metric).sign  # -1: lower is better, the best model has the lowest value; 0: no order
    if any(v is None for v in means) or not sign:
        return "—"
    return "yes" if all(sign * (a - b) > 0 for a, b in zip(means, means[1:])) else "no"


def table(title: str, models: tuple[str, ...], metrics: tuple[str, ...], groups: dict[str, lb.Aggregate],
          with_ordering: bool) -> list[str]:
    head = ["metric", *models] + (["ordering holds?"] if with_ordering else [])
    lines = [f"{title}", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric in metrics:
        cells = [metric, *(cell(groups.get(m), metric) for m in models)]
        if with_ordering:
            cells.append(ordering_holds(groups, metric))
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def main(path: Path) -> None:
    aggregates = lb.aggregate(lb.read_table(path))
    for dataset in sorted({a.dataset for a in aggregates}):
        groups = {a.model: a for a in aggregates if a.dataset == dataset}
        print("\n".join(table(f"{dataset} — ordering (ground truth as the anchor)", ("ground-truth", *STUDY),
                              STUDY_METRICS, groups, True)))
        print("\n".join(table(f"{dataset} — downstream RMSE and representation learners", LEARNERS,
                              LEARNER_METRICS, groups, False)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "v1" / "smoke.csv")
