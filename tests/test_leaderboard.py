"""Leaderboard tables: append under a lock, validation of records and hand-edited CSVs, rendering."""

from __future__ import annotations

import json
import multiprocessing as mp
import re

import numpy as np
import pytest

from disentbench import leaderboard as lb
from disentbench.cli import main


def make_record(model="multi-head", seed=0, dataset="dsprites-procedural", tier="smoke", **metrics):
    metrics = metrics or {"mig.score": 0.1 + seed / 100, "dci.disentanglement": 0.2, "dci.informativeness_test": 0.5}
    return {
        "record_format": "disentbench-score-record",
        "record_format_version": 1,
        "record_id": f"{model}-{dataset}-{tier}-{seed}".replace("_", "-") + "0" * 8,
        "model": model,
        "model_config_hash": "ab" * 8,
        "dataset": dataset,
        "dataset_version": "1",
        "tier": tier,
        "seed": seed,
        "preset": "reference",
        "metrics": metrics,
        "disentbench_version": "0.1.0",
        "metric_definitions_version": "1",
        "leaderboard_version": lb.LEADERBOARD_VERSION,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "created": "2026-11-22T07:00:00Z",
    }


@pytest.fixture
def board(tmp_path):
    return tmp_path / "leaderboards" / f"v{lb.LEADERBOARD_VERSION}"


def test_add_creates_table_with_documented_header(board):
    lb.add_records([make_record(seed=0), make_record(seed=1)], board)
    header = (board / "smoke.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[: len(lb.ID_COLUMNS)]) == lb.ID_COLUMNS
    assert tuple(header[-len(lb.TRAILER_COLUMNS) :]) == lb.TRAILER_COLUMNS
    assert header[len(lb.ID_COLUMNS) : -len(lb.TRAILER_COLUMNS)] == ["mig.score", "dci.disentanglement",
                                                                     "dci.informativeness_test"]
    table = lb.read_table(board / "smoke.csv")
    assert [r["seed"] for r in table.rows] == ["0", "1"]
    assert float(table.rows[1]["mig.score"]) == pytest.approx(0.11)


def test_new_metric_column_extends_header_and_keeps_old_rows(board):
    lb.add_records([make_record(seed=0)], board)
    lb.add_records([make_record(seed=1, **{"mig.score": 0.3, "sap.score": 0.05})], board)
    table = lb.read_table(board / "smoke.csv")
    assert "sap.score" in table.metric_columns
    assert table.rows[0]["sap.score"] == "" and table.rows[1]["sap.score"] == "0.05"
    assert table.rows[0]["dci.disentanglement"] == "0.2"


def test_duplicate_run_rejected_unless_replace(board):
    lb.add_records([make_record(seed=0)], board)
    again = make_record(seed=0, **{"mig.score": 0.9})
    again["record_id"] = "f" * 16
    with pytest.raises(lb.LeaderboardError, match="same run"):
        lb.add_records([again], board)
    lb.add_records([again], board, replace=True)
    rows = lb.read_table(board / "smoke.csv").rows
    assert len(rows) == 1 and rows[0]["mig.score"] == "0.9"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("metrics", {"mig.score": float("nan")}, "not finite"),
        ("metrics", {"mig.score": "abc"}, "not a number"),
        ("metrics", {"mig.score": 1.5}, r"outside the declared range \(higher is better, \[0, 1\]\)"),
        ("metrics", {"multitask.rmse": -0.1}, r"outside the declared range \(lower is better, \[0, ∞\)\)"),
        ("metrics", {"irs.n_active_codes": 2.5}, "outside the declared range"),
        ("metrics", {"mig.scor": 0.5}, "no declared meaning"),
        ("seed", -1, "non-negative integer"),
        ("leaderboard_version", "7", "does not match"),
        ("commit", "not-a-commit", "git commit"),
        ("created", "yesterday", "ISO-8601"),
        ("model", "has space", "model"),
    ],
)
def test_invalid_record_rejected_and_table_untouched(board, field, value, message):
    lb.add_records([make_record(seed=0)], board)
    before = (board / "smoke.csv").read_bytes()
    bad = make_record(seed=1)
    bad[field] = value
    with pytest.raises(lb.LeaderboardError, match=message):
        lb.add_records([make_record(seed=2), bad], board)
    assert (board / "smoke.csv").read_bytes() == before  # all or nothing


def test_mixed_metric_definition_versions_rejected(board):
    lb.add_records([make_record(seed=0)], board)
    other = make_record(seed=1)
    other["metric_definitions_version"] = "2"
    with pytest.raises(lb.LeaderboardError, match="metric_definitions_version"):
        lb.add_records([other], board)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("0.11", "oops", 1), r"line 3 .*column 'mig.score': 'oops' is not a number"),
        (lambda t: t.rstrip("\n"), "not terminated"),
        (lambda t: t + "x,y\n", "line 4 has 2 fields"),
        (lambda t: t.replace("record_id", "id", 1), "header must start"),
        (lambda t: t.replace(",smoke,1,", ",smoke,one,", 1), r"line 3 .*column 'seed'"),
    ],
)
def test_hand_edited_csv_gives_clear_error_and_is_never_rewritten(board, edit, message):
    lb.add_records([make_record(seed=0), make_record(seed=1)], board)
    path = board / "smoke.csv"
    path.write_text(edit(path.read_text()))
    broken = path.read_bytes()
    with pytest.raises(lb.LeaderboardError, match=message):
        lb.check(board)
    with pytest.raises(lb.LeaderboardError):
        lb.add_records([make_record(seed=2)], board)
    assert path.read_bytes() == broken


def test_committed_tables_lie_in_their_declared_ranges():
    from disentbench.metrics.registry import score_meaning

    paths = [p for version in sorted(lb.default_root().glob("v*")) for p in lb.list_tables(version)]
    assert lb.version_dir() / "smoke.csv" in paths and lb.version_dir(version="1") / "smoke.csv" in paths
    for path in paths:
        table = lb.read_table(path)  # validation checks every value against its key's declared range
        for column in table.metric_columns:
            values = [float(r[column]) for r in table.rows if r[column]]
            assert values and all(score_meaning(column).contains(v) for v in values), (path, column)


def test_add_keeps_the_table_file_mode(board):
    lb.add_records([make_record(seed=0)], board)
    path = board / "smoke.csv"
    path.chmod(0o640)
    lb.add_records([make_record(seed=1)], board)
    assert path.stat().st_mode & 0o777 == 0o640 and len(lb.read_table(path).rows) == 2


def test_crlf_table_is_refused_with_one_line_error_and_left_as_is(board, tmp_path, capsys):
    lb.add_records([make_record(seed=0)], board)
    path = board / "smoke.csv"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    before = path.read_bytes()
    record = tmp_path / "r.json"
    record.write_text(json.dumps(make_record(seed=1)))
    assert main(["leaderboard", "add", str(record), "--dir", str(board)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "CRLF" in err
    assert path.read_bytes() == before
    with pytest.raises(lb.LeaderboardError, match="line 1 ends with CR"):
        lb.check(board)


def _append_many(args):
    board, worker, n = args
    for i in range(n):
        lb.add_records([make_record(model=f"m{worker}", seed=i)], board)
    return n


def test_parallel_appends_lose_no_rows(board):
    workers, per_worker = 4, 8
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        done = pool.map(_append_many, [(board, w, per_worker) for w in range(workers)])
    assert sum(done) == workers * per_worker
    table = lb.read_table(board / "smoke.csv")  # validates every row: none torn
    got = sorted((r["model"], int(r["seed"])) for r in table.rows)
    assert got == sorted((f"m{w}", i) for w in range(workers) for i in range(per_worker))


def test_render_mean_std_and_chart(board):
    recs = [make_record(seed=s, **{"mig.score": v, "sap.score": 0.1, "irs.score": 0.5}) for s, v in enumerate([0.2, 0.4, 0.6])]
    recs.append(make_record(model="random", seed=0, **{"mig.score": 0.0}))
    lb.add_records(recs, board)
    written = lb.render(board)
    md = (board / "smoke.md").read_text()
    assert "| model | seeds | mig.score | sap.score |" in md  # headline metrics first
    assert "| multi-head | 0,1,2 | 0.400 ± 0.200 | 0.100 ± 0.000 |" in md
    assert "| random | 0 | 0.000 | – |" in md
    assert "Other metrics:" in md and "| multi-head | 0,1,2 | 0.500 ± 0.000 |" in md
    png = board / "smoke_dsprites-procedural.png"
    assert png in written and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lb.check(board)  # rendered Markdown is up to date
    lb.add_records([make_record(model="ae", seed=0)], board)
    with pytest.raises(lb.LeaderboardError, match="out of date"):
        lb.check(board)


def test_cli_add_render_check(board, tmp_path, capsys):
    paths = []
    for s in range(2):
        p = tmp_path / f"r{s}.json"
        p.write_text(json.dumps(make_record(seed=s)))
        paths.append(str(p))
    assert main(["leaderboard", "add", *paths, "--dir", str(board)]) == 0
    assert main(["leaderboard", "check", "--dir", str(board)]) == 0
    assert "ok:" in capsys.readouterr().out
    (board / "smoke.csv").write_text((board / "smoke.csv").read_text().replace("0.2", "NaN", 1))
    assert main(["leaderboard", "check", "--dir", str(board)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "dci.disentanglement" in err and "not finite" in err


def test_study_tables_judge_the_ordering_with_rmse_lower_is_better(board):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "leaderboards" / "study_tables.py"
    spec = importlib.util.spec_from_file_location("study_tables", script)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    ranks = {"multi-head": 4, "one-head": 3, "single-task": 2, "random": 1}
    records = [make_record(model, seed, **{"mig.score": r / 10 + seed / 1000, "multitask.rmse": 10.0 - r,
                                           "dci.completeness": 0.5 - r / 10, "sap.score": r / 100 + seed / 20})
               for model, r in ranks.items() for seed in (0, 1)]
    lb.add_records(records, board)
    frame = lb.table_frame(lb.read_table(board / "smoke.csv"))
    (stats,) = study.study_stats(lb.summary(frame)).values()
    pairs = ("multi-head > one-head", "one-head > single-task", "single-task > random")
    # every pair 0.1 apart with a spread of 0.0007: resolved at n = 2, each with its p-value
    assert re.fullmatch("; ".join(f"{p} p = [0-9.e-]+" for p in pairs), study.ordering_holds(frame, "mig.score"))
    # the best model has the lowest RMSE; no spread at all: p = 0
    assert study.ordering_holds(frame, "multitask.rmse") == "; ".join(f"{p} p = 0" for p in pairs)
    assert study.ordering_holds(frame, "dci.completeness") == "; ".join(f"{p} reversed (p = 0)" for p in pairs)
    # gaps of 0.01 under a spread of 0.035
    assert re.fullmatch("; ".join(f"{p} not resolved at n = 2 \\(p = [0-9.]+\\)" for p in pairs),
                        study.ordering_holds(frame, "sap.score"))
    assert study.ordering_holds(frame, "dci.disentanglement") == "—"
    # a model without rows (single-task) leaves out its two pairs and keeps the one it is not in
    no_single = frame[frame["model"] != "single-task"]
    assert re.fullmatch("multi-head > one-head p = [0-9.e-]+", study.ordering_holds(no_single, "mig.score"))
    one_seed = frame[(frame["model"] != "single-task") | (frame["seed"] == 0)]
    assert study.ordering_holds(one_seed, "multitask.rmse") == (
        "multi-head > one-head p = 0; one-head > single-task no test (n = 2, 1); single-task > random no test (n = 1, 2)")
    assert study.cell(stats, "random", "mig.score") == "0.101 ± 0.001 (n=2)"
    seeds = study.seeds_table("t", stats, "dsprites-procedural")
    assert seeds[3].startswith("| mig.score | multi-head > one-head | +0.08 | 0.001, 0.001 | 2 | 0.11, 0.02 | 14 |")


def test_load_gives_typed_frames_of_the_committed_tables():
    import pandas as pd

    for tier in ("smoke",):
        table = lb.read_table(lb.table_path(lb.version_dir(), tier))
        frame = lb.load(tier=tier, version=lb.LEADERBOARD_VERSION)
        assert len(frame) == len(table.rows) and list(frame.columns) == table.columns
        assert isinstance(frame["model"].dtype, pd.StringDtype) and frame["seed"].dtype == "int64"
        assert all(frame[c].dtype == "float64" for c in table.metric_columns)
        assert str(frame["created"].dtype).startswith("datetime64") and frame["created"].dt.tz is not None
        np.testing.assert_array_equal(frame["mig.score"].to_numpy(), [float(r["mig.score"] or "nan") for r in table.rows])
        agg = {(a.dataset, a.preset, a.model): a for a in lb.aggregate(table)}
        stats = lb.summary(frame)
        for row in stats.itertuples():
            a = agg[(row.dataset, row.preset, row.model)]
            assert row.mean == pytest.approx(a.mean[row.metric], rel=1e-12, abs=1e-15) and row.n == a.count[row.metric]


def test_summary_is_a_student_t_interval_and_frames_are_copy_on_write(board):
    import pandas as pd
    from scipy import stats

    values = [0.1, 0.3, 0.2]
    lb.add_records([make_record(seed=s, **{"mig.score": v}) for s, v in enumerate(values)]
                   + [make_record("random", 0, **{"mig.score": 0.05})], board)
    frame = lb.table_frame(lb.read_table(board / "smoke.csv"))
    out = lb.summary(frame, confidence=0.9).set_index(["model", "metric"])
    mh = out.loc[("multi-head", "mig.score")]
    half = stats.t.ppf(0.95, 2) * pd.Series(values).std() / 3 ** 0.5
    assert mh["n"] == 3 and mh["mean"] == pytest.approx(0.2)
    assert (mh["ci_low"], mh["ci_high"]) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    single = out.loc[("random", "mig.score")]
    assert single["n"] == 1 and pd.isna(single["std"]) and pd.isna(single["ci_low"])
    subset = frame[frame["model"] == "random"]
    subset.loc[:, "mig.score"] = 0.0  # copy-on-write: never writes through to the frame it came from
    assert frame.loc[frame["model"] == "random", "mig.score"].item() == 0.05


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("created"), r"\$: 'created' is a required property"),
        (lambda r: r.update(seed="0"), r"\$\.seed: '0' is not of type 'integer'"),
        (lambda r: r["metrics"].update({"mig.score": "high"}), r"\$\.metrics\['mig\.score'\]|mig\.score"),
        (lambda r: r.update(blas_kernels="SkylakeX"), r"\$\.blas_kernels: 'SkylakeX' is not of type 'array'"),
        (lambda r: r.update(record_format_version=2), "record_format_version 2 is not 1"),
        (lambda r: r.pop("record_format"), "not a score record"),
    ],
)
def test_leaderboard_add_refuses_a_record_that_does_not_validate(board, tmp_path, capsys, edit, message):
    record = make_record(seed=0)
    record["blas_kernels"] = ["SkylakeX"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps(record))
    edit(record)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    assert main(["leaderboard", "add", str(good), "--dir", str(board), "--no-render"]) == 0
    before = (board / "smoke.csv").read_bytes()
    assert main(["leaderboard", "add", str(bad), "--dir", str(board), "--no-render"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and re.search(message, err) and len(err.strip().splitlines()) == 1
    assert (board / "smoke.csv").read_bytes() == before


def test_written_records_are_validated(tmp_path):
    from disentbench.evaluation import EvaluationError, read_record, write_record

    record = make_record(seed=0)
    write_record(record, tmp_path / "r.json")
    assert read_record(tmp_path / "r.json") == record
    record["seed"] = -1
    with pytest.raises(EvaluationError, match=r"\$\.seed: -1 is less than the minimum of 0"):
        write_record(record, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


# -- collapsed runs ------------------------------------------------------------------------------------------
def collapsed_record(seed=0, dims=(1, 4), **kwargs):
    record = make_record(seed=seed, **kwargs)
    record.update(code_dim=10, collapsed_dimensions=list(dims))
    return record


def test_add_refuses_a_collapsed_record_naming_it_and_the_count(board, tmp_path, capsys):
    lb.add_records([make_record(seed=0)], board)
    before = (board / "smoke.csv").read_bytes()
    record = collapsed_record(seed=1)
    with pytest.raises(lb.LeaderboardError, match=rf"record 1 \({record['record_id']}: multi-head on "
                                                  r"dsprites-procedural, seed 1\): 2 of 10 code dimensions collapsed"):
        lb.add_records([record], board)
    path = tmp_path / "collapsed.json"
    path.write_text(json.dumps(record))
    assert main(["leaderboard", "add", str(path), "--dir", str(board), "--no-render"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--force-collapsed" in err and record["record_id"] in err
    assert (board / "smoke.csv").read_bytes() == before


def test_forced_collapsed_record_is_added_marked_and_rendered_with_a_footnote(board, tmp_path):
    lb.add_records([make_record(seed=0)], board)
    path = tmp_path / "collapsed.json"
    path.write_text(json.dumps(collapsed_record(seed=1)))
    assert main(["leaderboard", "add", str(path), "--dir", str(board), "--force-collapsed"]) == 0
    text = (board / "smoke.csv").read_text()
    assert text.splitlines()[0].endswith(",created,collapsed_dims")
    table = lb.read_table(board / "smoke.csv")
    assert table.collapsed_column and [r["collapsed_dims"] for r in table.rows] == ["", "2"]
    md = (board / "smoke.md").read_text()
    assert "| multi-head | 0,1† |" in md and "`†` after a seed: that run has collapsed code dimensions" in md
    lb.check(board)
    frame = lb.table_frame(table)
    assert frame["collapsed_dims"].dtype == "Int64" and frame["collapsed_dims"].isna().tolist() == [True, False]
    assert "collapsed_dims" not in set(lb.summary(frame)["metric"])


def test_tables_without_the_column_read_and_keep_their_format(board):
    lb.add_records([make_record(seed=0)], board)  # records before the field: unknown, no column
    path = board / "smoke.csv"
    old = path.read_text()
    assert "collapsed_dims" not in old and not lb.read_table(path).collapsed_column
    lb.add_records([make_record(seed=1)], board)
    assert path.read_text().startswith(old) and "collapsed_dims" not in path.read_text()
    clean = make_record(seed=2)
    clean["collapsed_dimensions"] = []  # a record that knows: 0 collapsed, the column joins the header
    lb.add_records([clean], board)
    table = lb.read_table(path)
    assert [r["collapsed_dims"] for r in table.rows] == ["", "", "0"]
    lb.render(board)
    assert "†" not in (board / "smoke.md").read_text()
    lb.check(board)
    path.write_text(path.read_text().replace(",0\n", ",x\n"))
    with pytest.raises(lb.LeaderboardError, match="column 'collapsed_dims': 'x' is not a count"):
        lb.read_table(path)


def test_records_with_and_without_collapsed_dimensions_validate(tmp_path):
    from disentbench.evaluation import EvaluationError, read_record, write_record

    write_record(collapsed_record(), tmp_path / "r.json")
    assert read_record(tmp_path / "r.json")["collapsed_dimensions"] == [1, 4]
    with pytest.raises(EvaluationError, match="collapsed_dimensions"):
        write_record(collapsed_record(dims=(-1,)), tmp_path / "bad.json")


def test_check_configs_flags_rows_whose_reference_config_moved(board, tmp_path, capsys):
    current = lb.reference_config_hash("multi-head", "smoke", "dsprites-procedural")
    moved = make_record(seed=0)  # hash "abab…": a config the TOML does not resolve to
    fresh = dict(make_record(seed=1), model_config_hash=current)
    anchor = dict(make_record(model="ground-truth", seed=0), model_config_hash="")
    unregistered = make_record(model="my-encoder", seed=0)
    lb.add_records([moved, fresh, anchor, unregistered], board)
    stale = lb.stale_rows(lb.read_table(board / "smoke.csv"))
    assert len(stale) == 1 and "row 1 (multi-head on dsprites-procedural, seed 0)" in stale[0] and current in stale[0]
    lb.render(board, charts=False)
    assert main(["leaderboard", "check", "--dir", str(board)]) == 0
    assert main(["leaderboard", "check", "--dir", str(board), "--configs"]) == 1
    assert "stale: smoke.csv row 1" in capsys.readouterr().err
