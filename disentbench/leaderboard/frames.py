"""Leaderboard tables as pandas DataFrames: :func:`load` (one typed row per record) and :func:`summary` (mean, std,
n and a Student-t confidence interval over seeds per model × dataset × metric). The CSV stays the source of truth:
every frame is built from a table read and validated by :func:`~disentbench.leaderboard.table.read_table`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from disentbench.leaderboard.table import (
    COLLAPSED_COLUMN,
    ID_COLUMNS,
    LEADERBOARD_VERSION,
    TRAILER_COLUMNS,
    Table,
    read_table,
    table_path,
    version_dir,
)

if TYPE_CHECKING:
    import pandas as pd

#: the columns that identify a group of seeds in :func:`summary`
GROUP_COLUMNS = ("model", "dataset", "dataset_version", "preset")


def table_frame(table: Table) -> "pd.DataFrame":
    """One row per record: string columns (``pd.StringDtype``), ``seed`` int64, metrics float64 (NaN: not
    computed), ``created`` a UTC timestamp, ``collapsed_dims`` (when the table has it) nullable Int64 (NA: unknown)."""
    import pandas as pd

    columns = {}
    for column in table.columns:
        values = [row[column] for row in table.rows]
        if column == "seed":
            columns[column] = pd.Series(values, dtype="int64")
        elif column == COLLAPSED_COLUMN:
            columns[column] = pd.Series([int(v) if v != "" else pd.NA for v in values], dtype="Int64")
        elif column == "created":
            columns[column] = pd.to_datetime(pd.Series(values, dtype=pd.StringDtype()), utc=True, format="ISO8601")
        elif column in ID_COLUMNS or column in TRAILER_COLUMNS:
            columns[column] = pd.Series(values, dtype=pd.StringDtype())
        else:
            columns[column] = pd.Series([float(v) if v != "" else float("nan") for v in values], dtype="float64")
    return pd.DataFrame(columns, columns=table.columns)


def load(tier: str = "smoke", version: str = LEADERBOARD_VERSION, root: Path | None = None) -> "pd.DataFrame":
    """The validated table ``leaderboards/v<version>/<tier>.csv`` as a DataFrame (see :func:`table_frame`)."""
    return table_frame(read_table(table_path(version_dir(root, version), tier)))


def metric_columns(frame: "pd.DataFrame") -> list[str]:
    return [c for c in frame.columns if c not in ID_COLUMNS and c not in TRAILER_COLUMNS and c != COLLAPSED_COLUMN]


def summary(frame: "pd.DataFrame | None" = None, *, tier: str = "smoke", version: str = LEADERBOARD_VERSION,
            root: Path | None = None, confidence: float = 0.95) -> "pd.DataFrame":
    """Per model × dataset (version, preset) × metric over seeds: ``mean``, ``std`` (sample, ddof=1), ``n`` and the
    two-sided Student-t interval ``mean ± t_{(1+confidence)/2, n-1} · std / √n`` (``ci_low``, ``ci_high``); std and
    the interval are NaN for a single seed. ``frame`` defaults to :func:`load` of ``tier`` and ``version``."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    frame = load(tier, version, root) if frame is None else frame
    long = frame.melt(id_vars=list(GROUP_COLUMNS), value_vars=metric_columns(frame), var_name="metric")
    long = long.dropna(subset=["value"])
    out = long.groupby([*GROUP_COLUMNS, "metric"], sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    out = out.rename(columns={"count": "n"}).astype({"n": "int64", "metric": pd.StringDtype()})
    half = stats.t.ppf((1 + confidence) / 2, out["n"] - 1) * out["std"] / np.sqrt(out["n"])
    return out.assign(ci_low=out["mean"] - half, ci_high=out["mean"] + half)
