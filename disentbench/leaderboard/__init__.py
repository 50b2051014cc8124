"""Versioned leaderboards: ``leaderboards/v<N>/<tier>.csv`` tables of score records.

* :mod:`~disentbench.leaderboard.table` — CSV parsing and validation, record -> row, locked atomic appends;
* :mod:`~disentbench.leaderboard.render` — Markdown (mean ± std over seeds) and charts, and the up-to-date check;
* :mod:`~disentbench.leaderboard.regression` — the CI score regression against the committed table;
* :mod:`~disentbench.leaderboard.frames` — :func:`load` and :func:`summary`: the tables as pandas DataFrames;
* :mod:`~disentbench.leaderboard.compare` — :func:`compare`: is model A above model B (Welch's t over seeds), and
  :func:`seeds_needed` for a gap.
"""

from disentbench.leaderboard.frames import load, summary, table_frame
from disentbench.leaderboard.compare import Comparison, compare, seeds_needed, welch_test

from disentbench.leaderboard.regression import RegressionReport, regression_check
from disentbench.leaderboard.staleness import reference_config_hash, stale_rows
from disentbench.leaderboard.render import (
    HEADLINE_METRICS,
    Aggregate,
    aggregate,
    chart_name,
    check,
    directions,
    ordered_metrics,
    render,
    render_chart,
    render_markdown,
)
from disentbench.leaderboard.table import (
    ID_COLUMNS,
    KEY_COLUMNS,
    LEADERBOARD_VERSION,
    TRAILER_COLUMNS,
    LeaderboardError,
    Table,
    add_records,
    default_root,
    directory_version,
    format_table,
    list_tables,
    load_record,
    parse_table,
    read_table,
    record_to_row,
    table_lock,
    table_path,
    validate_row,
    version_dir,
)

__all__ = [
    "HEADLINE_METRICS",
    "ID_COLUMNS",
    "KEY_COLUMNS",
    "LEADERBOARD_VERSION",
    "TRAILER_COLUMNS",
    "Aggregate",
    "Comparison",
    "LeaderboardError",
    "RegressionReport",
    "Table",
    "add_records",
    "aggregate",
    "chart_name",
    "check",
    "compare",
    "default_root",
    "directions",
    "directory_version",
    "format_table",
    "list_tables",
    "load",
    "load_record",
    "ordered_metrics",
    "parse_table",
    "read_table",
    "record_to_row",
    "reference_config_hash",
    "regression_check",
    "render",
    "render_chart",
    "render_markdown",
    "seeds_needed",
    "stale_rows",
    "summary",
    "table_frame",
    "table_lock",
    "table_path",
    "validate_row",
    "version_dir",
    "welch_test",
]
