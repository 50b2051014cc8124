"""Leaderboard tables: one CSV per tier in ``leaderboards/v<N>/``, the source of truth.

One row is one score record (see :mod:`disentbench.evaluation.record`). The header is::

    record_id, model, model_config_hash, dataset, dataset_version, tier, seed, preset,
    <metric columns...>, disentbench_version, metric_definitions_version, leaderboard_version,
    commit, created[, collapsed_dims]

Metric columns are the namespaced score keys (``mig.score``, ``dci.disentanglement``, ...); an empty
cell means the metric was not computed for that record. Tables are UTF-8 with LF line ends.

``collapsed_dims`` (optional, last) is the number of collapsed code dimensions of the record's run (the record's
``collapsed_dimensions``); empty when unknown (records written before the field). :func:`add_records` refuses a
record with collapsed dimensions unless ``allow_collapsed=True`` (``leaderboard add --force-collapsed``), so a
count above 0 marks a forced row. The column is written when the table already has it or when a row of the table
knows its count, the way a new metric key extends the header; a table none of whose rows knows (the records before
the field, e.g. the first rows of ``v1/smoke.csv``) keeps its header byte for byte, and reading either form is
the same validation.

Writes happen under a file lock (``<table>.csv.lock``): the table is read, the new rows are
validated against it, and the whole table is written atomically (:func:`disentbench.fileio.atomic_write_text`,
which keeps the file's mode). Parallel appends therefore never lose or tear rows, and an invalid record
leaves the table untouched. A table that fails validation (edited by hand, CRLF line ends) is never
rewritten: every write first validates what is on disk and refuses to touch an invalid table.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from disentbench.fileio import atomic_write_text
from disentbench.metrics.registry import score_meaning

#: version of the leaderboard protocol (directory ``v<LEADERBOARD_VERSION>``); bump when a metric
#: definition, a default, a dataset version or the evaluation protocol changes (see CHANGELOG.md)
LEADERBOARD_VERSION = "2"

ID_COLUMNS = ("record_id", "model", "model_config_hash", "dataset", "dataset_version", "tier", "seed", "preset")
TRAILER_COLUMNS = ("disentbench_version", "metric_definitions_version", "leaderboard_version", "commit", "created")
#: the optional last column: how many code dimensions of the run collapsed (empty: unknown)
COLLAPSED_COLUMN = "collapsed_dims"
#: rows with equal values here describe the same run; a table holds at most one of each
KEY_COLUMNS = ("model", "dataset", "dataset_version", "tier", "seed", "preset")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_METRIC_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_COMMIT_RE = re.compile(r"^([0-9a-f]{7,40}(-dirty)?|unknown)$")


class LeaderboardError(ValueError):
    """A leaderboard table or a record is invalid; the message names the file, row and column."""


# -- paths ----------------------------------------------------------------------------------------
def default_root() -> Path:
    """``leaderboards/`` of the source checkout when there is one, else ``./leaderboards``."""
    repo = Path(__file__).resolve().parents[2] / "leaderboards"
    return repo if repo.is_dir() else Path.cwd() / "leaderboards"


def version_dir(root: Path | None = None, version: str = LEADERBOARD_VERSION) -> Path:
    return Path(root or default_root()) / f"v{version}"


def table_path(directory: Path, tier: str) -> Path:
    _check_name(tier, "tier")
    return Path(directory) / f"{tier}.csv"


def directory_version(directory: Path) -> str:
    """The leaderboard version a directory holds, from its name ``v<N>``."""
    name = Path(directory).resolve().name
    if not re.fullmatch(r"v\d+", name):
        raise LeaderboardError(f"{directory}: a leaderboard directory must be named v<N> (e.g. v1), got {name!r}")
    return name[1:]


# -- records -> rows ------------------------------------------------------------------------------
def record_to_row(record: dict[str, Any]) -> dict[str, str]:
    """Flatten a score record (dict from an evaluation JSON) into a table row of strings."""
    if not isinstance(record, dict):
        raise LeaderboardError("a score record must be a JSON object")
    missing = [c for c in (*ID_COLUMNS, *TRAILER_COLUMNS, "metrics") if c not in record]
    if missing:
        raise LeaderboardError(f"score record lacks field(s) {missing}")
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise LeaderboardError("score record field 'metrics' must be a non-empty object of name -> number")
    row = {c: _cell(record[c]) for c in (*ID_COLUMNS, *TRAILER_COLUMNS)}
    for key, value in metrics.items():
        if key in ID_COLUMNS or key in TRAILER_COLUMNS or key == COLLAPSED_COLUMN:
            raise LeaderboardError(f"metric name {key!r} collides with a fixed column")
        row[key] = _cell(value)
    collapsed = record.get("collapsed_dimensions")
    if collapsed is not None:
        if not isinstance(collapsed, list) or not all(isinstance(j, int) and not isinstance(j, bool) and j >= 0
                                                      for j in collapsed):
            raise LeaderboardError("score record field 'collapsed_dimensions' must be a list of code indices")
        row[COLLAPSED_COLUMN] = str(len(collapsed))
    return row


def row_metric_columns(row: dict[str, str]) -> list[str]:
    """The metric columns of a row: every column but the fixed ones."""
    return [c for c in row if c not in ID_COLUMNS and c not in TRAILER_COLUMNS and c != COLLAPSED_COLUMN]


def collapsed_count(row: dict[str, str]) -> int | None:
    """A row's number of collapsed code dimensions; None when unknown (no ``collapsed_dims`` cell or empty)."""
    text = row.get(COLLAPSED_COLUMN, "")
    return int(text) if text else None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise LeaderboardError(f"boolean {value!r} is not a valid cell value")
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- validation -----------------------------------------------------------------------------------
@dataclass
class Table:
    """A parsed, validated leaderboard table."""

    path: Path
    metric_columns: list[str]
    rows: list[dict[str, str]]
    #: whether the table has the optional last column ``collapsed_dims``
    collapsed_column: bool = False

    @property
    def columns(self) -> list[str]:
        return [*ID_COLUMNS, *self.metric_columns, *TRAILER_COLUMNS, *[COLLAPSED_COLUMN] * self.collapsed_column]


def _check_name(value: str, what: str) -> None:
    if not _NAME_RE.match(value or ""):
        raise LeaderboardError(f"invalid {what} {value!r}: use letters, digits and _ . + -")


def _check_header(header: Sequence[str], where: str) -> tuple[list[str], bool]:
    """The metric columns of a header, and whether it ends with the optional ``collapsed_dims``."""
    dupes = sorted({c for c in header if list(header).count(c) > 1})
    if dupes:
        raise LeaderboardError(f"{where}: duplicate column(s) {dupes}")
    collapsed_column = bool(header) and header[-1] == COLLAPSED_COLUMN
    header = header[:-1] if collapsed_column else header
    n_id, n_tr = len(ID_COLUMNS), len(TRAILER_COLUMNS)
    if tuple(header[:n_id]) != ID_COLUMNS:
        raise LeaderboardError(f"{where}: header must start with {', '.join(ID_COLUMNS)}; got {', '.join(header[:n_id])}")
    if len(header) < n_id + n_tr + 1 or tuple(header[-n_tr:]) != TRAILER_COLUMNS:
        raise LeaderboardError(f"{where}: header must end with {', '.join(TRAILER_COLUMNS)} after the metric columns")
    metric_columns = list(header[n_id:-n_tr])
    for name in metric_columns:
        if not _METRIC_RE.match(name):
            raise LeaderboardError(f"{where}: invalid metric column name {name!r}")
    return metric_columns, collapsed_column


def validate_row(row: dict[str, str], metric_columns: Iterable[str], where: str, *, version: str | None) -> None:
    """Raise :class:`LeaderboardError` naming ``where`` and the column if ``row`` is invalid (a metric value must be
    a finite number within its key's declared range)."""

    def bad(column: str, problem: str) -> LeaderboardError:
        return LeaderboardError(f"{where}, column {column!r}: {problem}")

    for column in ("record_id", "model", "dataset", "dataset_version", "tier", "preset"):
        if not _NAME_RE.match(row.get(column) or ""):
            raise bad(column, f"{row.get(column)!r} is empty or has characters outside letters, digits and _ . + -")
    if not re.fullmatch(r"[0-9a-f]{8,64}|", row["model_config_hash"] or ""):
        raise bad("model_config_hash", f"{row['model_config_hash']!r} is not a hex digest (or empty)")
    if not re.fullmatch(r"\d+", row.get("seed") or ""):
        raise bad("seed", f"{row.get('seed')!r} is not a non-negative integer")
    n_metrics = 0
    for column in metric_columns:
        text = row.get(column) or ""
        if text == "":
            continue
        try:
            value = float(text)
        except ValueError:
            raise bad(column, f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise bad(column, f"{text!r} is not finite")
        try:
            meaning = score_meaning(column)
        except KeyError as exc:
            raise bad(column, exc.args[0]) from None
        if not meaning.contains(value):
            raise bad(column, f"{text} lies outside the declared range ({meaning.describe()})")
        n_metrics += 1
    if n_metrics == 0:
        raise bad("metrics", "the row has no metric value")
    for column in ("disentbench_version", "metric_definitions_version", "leaderboard_version"):
        if not row.get(column):
            raise bad(column, "empty")
    if version is not None and row["leaderboard_version"] != version:
        raise bad(
            "leaderboard_version",
            f"{row['leaderboard_version']!r} does not match this leaderboard's version {version!r}",
        )
    if not _COMMIT_RE.match(row.get("commit") or ""):
        raise bad("commit", f"{row.get('commit')!r} is not a git commit hash (or 'unknown')")
    if not re.fullmatch(r"\d*", row.get(COLLAPSED_COLUMN, "")):
        raise bad(COLLAPSED_COLUMN, f"{row[COLLAPSED_COLUMN]!r} is not a count of code dimensions (or empty)")
    try:
        datetime.fromisoformat((row.get("created") or "").replace("Z", "+00:00"))
    except ValueError:
        raise bad("created", f"{row.get('created')!r} is not an ISO-8601 timestamp") from None


def _check_consistency(rows: list[dict[str, str]], where: str, start_line: int = 2) -> None:
    """Record ids unique, one row per run key, one definition version per table, one version per dataset."""
    ids: dict[str, int] = {}
    keys: dict[tuple, int] = {}
    defs: dict[str, int] = {}
    dataset_versions: dict[str, tuple[str, int]] = {}
    for i, row in enumerate(rows):
        line = start_line + i
        rid = row["record_id"]
        if rid in ids:
            raise LeaderboardError(f"{where}: line {line}: record_id {rid!r} already used on line {ids[rid]}")
        ids[rid] = line
        key = tuple(row[c] for c in KEY_COLUMNS)
        if key in keys:
            raise LeaderboardError(
                f"{where}: line {line}: a row for the same run ({', '.join(f'{c}={v}' for c, v in zip(KEY_COLUMNS, key))}) "
                f"is already on line {keys[key]}"
            )
        keys[key] = line
        defs.setdefault(row["metric_definitions_version"], line)
        if len(defs) > 1:
            raise LeaderboardError(
                f"{where}: line {line}, column 'metric_definitions_version': {row['metric_definitions_version']!r} "
                f"differs from {next(iter(defs))!r} on line {next(iter(defs.values()))}; scores under different metric "
                "definitions belong in different leaderboard versions"
            )
        seen = dataset_versions.setdefault(row["dataset"], (row["dataset_version"], line))
        if seen[0] != row["dataset_version"]:
            raise LeaderboardError(
                f"{where}: line {line}, column 'dataset_version': dataset {row['dataset']!r} version "
                f"{row['dataset_version']!r} differs from version {seen[0]!r} on line {seen[1]}; a new dataset version "
                "needs a new leaderboard version"
            )


def parse_table(text: str, where: str, *, version: str | None) -> Table:
    """Parse and validate a table's CSV text; raise :class:`LeaderboardError` on the first problem."""
    if text and not text.endswith("\n"):
        raise LeaderboardError(f"{where}: the last line is not terminated (truncated or torn write?)")
    if "\r" in text:
        line = text.count("\n", 0, text.index("\r")) + 1
        raise LeaderboardError(f"{where}: line {line} ends with CR (a CRLF table); tables use LF line ends and are "
                               "never rewritten silently: convert the file (e.g. `dos2unix`) and check it")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines = list(reader)
    except csv.Error as exc:
        raise LeaderboardError(f"{where}: not valid CSV: {exc}") from None
    if not lines:
        raise LeaderboardError(f"{where}: empty file (no header)")
    header = lines[0]
    metric_columns, collapsed_column = _check_header(header, where)
    rows = []
    for i, fields in enumerate(lines[1:], start=2):
        if not fields:
            raise LeaderboardError(f"{where}: line {i} is blank")
        if len(fields) != len(header):
            raise LeaderboardError(f"{where}: line {i} has {len(fields)} fields, the header has {len(header)}")
        row = dict(zip(header, fields))
        validate_row(row, metric_columns, f"{where}: line {i} (record {row['record_id']!r})", version=version)
        rows.append(row)
    _check_consistency(rows, where)
    return Table(Path(where), metric_columns, rows, collapsed_column)


def read_table(path: Path) -> Table:
    """Read and validate one CSV table."""
    path = Path(path)
    version = directory_version(path.parent)
    with open(path, encoding="utf-8", newline="") as fh:  # newline="": CRLF reaches parse_table as is
        text = fh.read()
    table = parse_table(text, str(path), version=version)
    tier = path.stem
    for i, row in enumerate(table.rows, start=2):
        if row["tier"] != tier:
            raise LeaderboardError(f"{path}: line {i}, column 'tier': {row['tier']!r} in the table of tier {tier!r}")
    table.path = path
    return table


def list_tables(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob("*.csv"))


# -- writing --------------------------------------------------------------------------------------
def format_table(metric_columns: list[str], rows: list[dict[str, str]], *, collapsed_column: bool = False) -> str:
    """The CSV text (LF line ends) of a table with these metric columns and rows (and the last column
    ``collapsed_dims`` when ``collapsed_column``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = [*ID_COLUMNS, *metric_columns, *TRAILER_COLUMNS, *[COLLAPSED_COLUMN] * collapsed_column]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return buf.getvalue()


def table_lock(path: Path, timeout: float):
    """The file lock ``<table>.csv.lock`` that every write of ``path`` (and its renders) holds."""
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=timeout)


def add_records(
    records: Sequence[dict[str, Any]],
    directory: Path | None = None,
    *,
    replace: bool = False,
    allow_collapsed: bool = False,
    timeout: float = 120.0,
) -> list[Path]:
    """Append score records to their tier tables under ``directory`` (default: the current version's, :func:`version_dir`).

    Each record is validated; all records go in or none does. ``replace=True`` replaces an existing
    row of the same run (same model, dataset, version, tier, seed, preset) instead of failing. A record
    whose ``collapsed_dimensions`` is not empty is refused unless ``allow_collapsed=True``; its row then
    carries the count in ``collapsed_dims`` (see the module docstring for when that column is written).
    Returns the tables written.
    """
    directory = Path(directory or version_dir())
    version = directory_version(directory)
    by_tier: dict[str, list[dict[str, str]]] = {}
    for n, record in enumerate(records, start=1):
        row = record_to_row(record)
        metric_columns = row_metric_columns(row)
        for c in metric_columns:
            if not _METRIC_RE.match(c):
                raise LeaderboardError(f"record {n}: invalid metric name {c!r}")
        where = f"record {n} ({row['record_id']}: {row['model']} on {row['dataset']}, seed {row['seed']})"
        validate_row(row, metric_columns, where, version=version)
        collapsed = collapsed_count(row)
        if collapsed and not allow_collapsed:
            of = f" of {record['code_dim']}" if isinstance(record.get("code_dim"), int) else ""
            raise LeaderboardError(
                f"{where}: {collapsed}{of} code dimensions collapsed {record['collapsed_dimensions'][:20]}; a "
                "collapsed run is not added to a table (add it marked with --force-collapsed / allow_collapsed=True)")
        by_tier.setdefault(row["tier"], []).append(row)
    written = []
    for tier, new_rows in by_tier.items():
        path = table_path(directory, tier)
        path.parent.mkdir(parents=True, exist_ok=True)
        with table_lock(path, timeout):
            if path.exists():
                table = read_table(path)
                metric_columns, rows = list(table.metric_columns), list(table.rows)
                collapsed_column = table.collapsed_column
            else:
                metric_columns, rows, collapsed_column = [], [], False
            for row in new_rows:
                metric_columns += [c for c in row_metric_columns(row) if c not in metric_columns]
                key = tuple(row[c] for c in KEY_COLUMNS)
                if replace:
                    rows = [r for r in rows if tuple(r[c] for c in KEY_COLUMNS) != key]
                rows.append(row)
            collapsed_column = collapsed_column or any(collapsed_count(r) is not None for r in rows)
            text = format_table(metric_columns, rows, collapsed_column=collapsed_column)
            parse_table(text, str(path), version=version)  # whole-table consistency before anything is written
            atomic_write_text(path, text)
        written.append(path)
    return written


def load_record(path: Path) -> dict[str, Any]:
    """Read a score-record JSON file, validated against the record schema (format, version, every field)."""
    from disentbench.evaluation.record import read_record
    from disentbench.evaluation.sources import EvaluationError

    try:
        return read_record(path)
    except EvaluationError as exc:
        raise LeaderboardError(str(exc)) from None
