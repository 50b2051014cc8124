"""Rendering of leaderboard tables: mean ± std over seeds as Markdown, one figure per dataset (every model on the
headline metrics, std and Student-t error bars), and the check that
the committed Markdown is up to date. Which way each column is better comes from the metric registry
(:func:`disentbench.metrics.registry.score_meaning`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from disentbench.fileio import atomic_write, atomic_write_text
from disentbench.leaderboard.table import (
    LeaderboardError,
    Table,
    collapsed_count,
    directory_version,
    list_tables,
    read_table,
    table_lock,
    table_path,
    version_dir,
)
from disentbench.metrics.registry import score_meaning

#: metric columns shown first (in this order) in rendered tables and charts; others follow by name
HEADLINE_METRICS = (
    "mig.score",
    "dci.disentanglement",
    "dci.completeness",
    "dci.informativeness_test",
    "sap.score",
    "factor_vae.eval_accuracy",
    "beta_vae.eval_accuracy",
    "multitask.rmse",
)


#: the mark after a seed whose run has collapsed code dimensions (a row added with ``--force-collapsed``)
COLLAPSED_MARK = "†"
COLLAPSED_NOTE = (f"`{COLLAPSED_MARK}` after a seed: that run has collapsed code dimensions (added with "
                  "`--force-collapsed`; the count is the CSV's `collapsed_dims`); its scores are in the mean ± std.")

#: what a model's declared ``supervision`` (model registry) means, noted under the rendered tables that hold one
SUPERVISION_NOTES = {
    "supervised": "its representation was trained on the factor labels.",
    "supervised-pretrained": "its representation builds on a stage trained on the factor labels.",
}


def supervision_of(model: str) -> str:
    """The ``supervision`` a registered model declares, else ``""`` (unregistered names too)."""
    from disentbench.evaluation.record import declared_supervision

    return declared_supervision(model) or ""


def ordered_metrics(columns: Iterable[str]) -> list[str]:
    """Headline metrics first (in :data:`HEADLINE_METRICS` order), then the rest by name."""
    columns = list(columns)
    head = [m for m in HEADLINE_METRICS if m in columns]
    return head + sorted(c for c in columns if c not in head)


@dataclass
class Aggregate:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) over seeds of one model; ``collapsed_seeds``: the
    seeds whose rows have collapsed code dimensions."""

    dataset: str
    dataset_version: str
    preset: str
    model: str
    seeds: list[int]
    mean: dict[str, float]
    std: dict[str, float]
    count: dict[str, int]
    collapsed_seeds: list[int] = field(default_factory=list)


def aggregate(table: Table) -> list[Aggregate]:
    """Group rows by (dataset, dataset_version, preset, model) and summarise every metric over seeds."""
    import numpy as np

    groups: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for row in table.rows:
        groups.setdefault((row["dataset"], row["dataset_version"], row["preset"], row["model"]), []).append(row)
    out = []
    for (dataset, dversion, preset, model), rows in sorted(groups.items()):
        mean, std, count = {}, {}, {}
        for column in table.metric_columns:
            values = np.array([float(r[column]) for r in rows if r.get(column)], dtype=np.float64)
            if values.size == 0:
                continue
            mean[column] = float(values.mean())
            std[column] = float(values.std(ddof=1)) if values.size > 1 else 0.0
            count[column] = int(values.size)
        collapsed = sorted(int(r["seed"]) for r in rows if collapsed_count(r))
        out.append(
            Aggregate(dataset, dversion, preset, model, sorted(int(r["seed"]) for r in rows), mean, std, count,
                      collapsed)
        )
    return out


def _fmt(agg: Aggregate, column: str) -> str:
    if column not in agg.mean:
        return "–"
    if agg.count[column] == 1:
        return f"{agg.mean[column]:.3f}"
    return f"{agg.mean[column]:.3f} ± {agg.std[column]:.3f}"


def directions(columns: Iterable[str]) -> list[str]:
    """Lines saying which way each column is better, from the declared score meanings."""
    by_direction: dict[str | None, list[str]] = {"lower": [], None: []}
    for column in sorted(columns):
        direction = score_meaning(column).direction
        if direction in by_direction:
            by_direction[direction].append(f"`{column}`")
    lines = ["Higher is better in every column except:"]
    if by_direction["lower"]:
        lines.append(f"lower is better for {', '.join(by_direction['lower'])};")
    if by_direction[None]:
        lines.append(f"no better or worse (counts, diagnostics) for {', '.join(by_direction[None])}.")
    return lines if len(lines) > 1 else ["Higher is better in every column."]


def render_markdown(table: Table, *, chart_names: dict[tuple[str, str, str], str] | None = None) -> str:
    """Markdown: one table per (dataset, version, preset), one line per model, mean ± std over seeds."""
    tier = table.path.stem
    aggs = aggregate(table)
    supervision = {a.model: supervision_of(a.model) for a in aggs}
    metrics = ordered_metrics(table.metric_columns)
    lines = [
        f"# Leaderboard v{directory_version(table.path.parent)} — tier `{tier}`",
        "",
        f"Rendered from `{table.path.name}` by `disentbench leaderboard render`; do not edit by hand.",
        "Cells are mean ± sample standard deviation (ddof=1) over seeds; `–`: not computed.",
        *directions(table.metric_columns),
        "`ground-truth`: the normalised factors as codes (the upper anchor).",
        *[f"`({kind})`: {note}" for kind, note in SUPERVISION_NOTES.items() if kind in supervision.values()],
        *[COLLAPSED_NOTE] * any(a.collapsed_seeds for a in aggs),
        "",
    ]
    groups: dict[tuple[str, str, str], list[Aggregate]] = {}
    for agg in aggs:
        groups.setdefault((agg.dataset, agg.dataset_version, agg.preset), []).append(agg)
    for (dataset, dversion, preset), members in groups.items():
        present = [m for m in metrics if any(m in a.mean for a in members)]
        headline = [m for m in present if m in HEADLINE_METRICS]
        others = [m for m in present if m not in HEADLINE_METRICS]
        lines += [f"## {dataset} (version {dversion}), preset `{preset}`", ""]
        for title, columns in (("", headline), ("Other metrics", others)):
            if not columns:
                continue
            if title:
                lines += [f"{title}:", ""]
            lines.append("| model | seeds | " + " | ".join(columns) + " |")
            lines.append("|---|---|" + "---|" * len(columns))
            for a in members:
                seeds = ",".join(f"{s}{COLLAPSED_MARK * (s in a.collapsed_seeds)}" for s in a.seeds)
                name = f"{a.model} ({supervision[a.model]})" if supervision[a.model] else a.model
                lines.append(f"| {name} | {seeds} | " + " | ".join(_fmt(a, m) for m in columns) + " |")
            lines.append("")
        chart = (chart_names or {}).get((dataset, dversion, preset))
        if chart:
            lines += [f"![{dataset} {preset}]({chart})", ""]
    if not groups:
        lines.append("(no rows yet)")
        lines.append("")
    return "\n".join(lines)


def error_bars(agg: Aggregate, metric: str, confidence: float = 0.95) -> tuple[float, float]:
    """(std, half-width of the two-sided Student-t interval) over seeds of one model's metric; (0, 0) for one seed
    (the interval of :func:`disentbench.leaderboard.frames.summary`: t_{(1+c)/2, n-1} · std / √n)."""
    from scipy import stats

    n = agg.count.get(metric, 0)
    if n < 2:
        return 0.0, 0.0
    std = agg.std[metric]
    return std, float(stats.t.ppf((1 + confidence) / 2, n - 1) * std / n ** 0.5)


def chart_metrics(members: list[Aggregate]) -> list[str]:
    """The headline metrics any model has (in :data:`HEADLINE_METRICS` order), else the first seven by name."""
    present = ordered_metrics({k for a in members for k in a.mean})
    return [m for m in present if m in HEADLINE_METRICS] or present[:7]


def render_chart(members: list[Aggregate], path: Path, title: str) -> None:
    """The per-dataset figure: one panel per headline metric, one horizontal bar per model (mean over seeds) with
    the seeds' standard deviation as a thick error bar and the 95 % Student-t interval as a thin one (two or more
    seeds); a panel of a lower-is-better metric says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = chart_metrics(members)
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    y = np.arange(len(members))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols + 1.2, 0.22 * len(members) * rows + 1.0 * rows + 0.6),
                             dpi=100, squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, metric in zip(axes.flat, metrics):
        means = np.array([a.mean.get(metric, np.nan) for a in members])
        bars = np.array([error_bars(a, metric) for a in members])
        ax.barh(y, np.nan_to_num(means), color=[cmap(i % 10) for i in range(len(members))], height=0.7)
        ax.errorbar(means, y, xerr=bars[:, 1], fmt="none", ecolor="0.55", elinewidth=0.8, capsize=2)
        ax.errorbar(means, y, xerr=bars[:, 0], fmt="none", ecolor="black", elinewidth=2.0, capsize=0)
        direction = score_meaning(metric).direction
        ax.set_title(metric + (" (lower is better)" if direction == "lower" else ""), fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
        if direction == "higher" and np.nanmin(means) >= 0:
            ax.set_xlim(left=0)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_yticks(y, [a.model for a in members])
    axes[0, 0].invert_yaxis()  # shared by every panel: the first model on top
    fig.suptitle(f"{title}\nmean over seeds; thick bar ± std, thin bar 95 % t-interval (2+ seeds)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def chart_name(tier: str, dataset: str, preset: str) -> str:
    suffix = "" if preset == "reference" else f"_{preset}"
    return f"{tier}_{dataset}{suffix}.png"


def render(directory: Path | None = None, *, charts: bool = True) -> list[Path]:
    """Render ``<tier>.md`` (and one PNG chart per dataset and preset) for every table in ``directory``."""
    directory = Path(directory or version_dir())
    written = []
    for path in list_tables(directory):
        with table_lock(path, 120.0):
            table = read_table(path)
            names = {}
            if charts:
                groups: dict[tuple[str, str, str], list[Aggregate]] = {}
                for agg in aggregate(table):
                    groups.setdefault((agg.dataset, agg.dataset_version, agg.preset), []).append(agg)
                for (dataset, dversion, preset), members in groups.items():
                    name = chart_name(path.stem, dataset, preset)
                    render_chart(members, directory / name, f"{dataset} v{dversion} — tier {path.stem}, preset {preset}")
                    names[(dataset, dversion, preset)] = name
                    written.append(directory / name)
            md = directory / f"{path.stem}.md"
            atomic_write_text(md, render_markdown(table, chart_names=names))
            written.append(md)
    return written


def check(directory: Path | None = None, *, tier: str | None = None) -> list[Table]:
    """Validate every table (or one tier's) and that its rendered Markdown is up to date."""
    directory = Path(directory or version_dir())
    if not directory.is_dir():
        raise FileNotFoundError(f"no leaderboard directory {directory}")
    paths = [table_path(directory, tier)] if tier else list_tables(directory)
    tables = []
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no table for tier {path.stem!r}: {path}")
        table = read_table(path)
        md = path.with_suffix(".md")
        if md.exists():
            charts = {
                (a.dataset, a.dataset_version, a.preset): chart_name(path.stem, a.dataset, a.preset)
                for a in aggregate(table)
                if (directory / chart_name(path.stem, a.dataset, a.preset)).exists()
            }
            if md.read_text(encoding="utf-8") != render_markdown(table, chart_names=charts):
                raise LeaderboardError(f"{md} is out of date with {path.name}: run `disentbench leaderboard render`")
        tables.append(table)
    return tables
