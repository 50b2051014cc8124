"""Sweeps without a cluster: grid expansion, cell hashing, idempotent cells, the status view, the local backend."""

from __future__ import annotations

import json
import textwrap

import pytest

from disentbench import leaderboard as lb
from disentbench import sweep as sw
from disentbench import tiers
from disentbench.cli import main
from disentbench.sweep import cells as sc
from disentbench.sweep.slurm import run_slurm

#: evaluation cheap enough for unit tests (MIG on 2,000 points, no multi-task protocol): rows go to custom.csv
CHEAP = '[evaluation]\nmetrics = "mig"\nn_points = 2000\ntasks = false\n'


def write_grid(tmp_path, body: str = "", *, models='["ground-truth"]', seeds="[0]", evaluation=CHEAP,
               name="grid.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(f"""\
        tier = "smoke"
        models = {models}
        datasets = ["dsprites-procedural"]
        seeds = {seeds}
        leaderboard = "lb/v{lb.LEADERBOARD_VERSION}"
        work_dir = "cells"
        threads = 1
        retries = 1
        """) + body + "\n" + evaluation)
    return path


def rows(sweep):
    path = lb.table_path(sweep.leaderboard, sw.record_tier(sweep))
    return lb.read_table(path).rows if path.exists() else []


# -- grid ------------------------------------------------------------------------------------------------------
def test_expansion_is_models_by_datasets_by_seeds_with_upstream_cells_first(tmp_path):
    path = write_grid(tmp_path, models='["ground-truth", "random", "kf"]', seeds="[0, 1]")
    cells = sw.expand(sw.load_sweep(path))
    assert [(c.model, c.seed, c.scored) for c in cells] == [
        ("ground-truth", 0, True), ("random", 0, True), ("kf-teacher", 0, False), ("kf", 0, True),
        ("ground-truth", 1, True), ("random", 1, True), ("kf-teacher", 1, False), ("kf", 1, True)]
    teacher, student = cells[2], cells[3]
    assert student.upstream == teacher.id and teacher.upstream is None
    assert len({c.id for c in cells}) == len(cells)


def test_upstream_model_listed_in_the_grid_is_one_scored_cell(tmp_path):
    cells = sw.expand(sw.load_sweep(write_grid(tmp_path, models='["kf", "kf-teacher"]')))
    assert [(c.model, c.scored) for c in cells] == [("kf-teacher", True), ("kf", True)]
    assert cells[1].upstream == cells[0].id


def test_leaderboard_models_are_the_smoke_tiers(tmp_path):
    sweep = sw.load_sweep(write_grid(tmp_path, models='"leaderboard"'))
    assert sweep.models == tiers.smoke_models()


def test_committed_sweep_files_load():
    for name, tier in (("smoke", "smoke"), ("paper", "paper")):
        sweep = sw.load_sweep(lb.default_root() / "sweeps" / f"{name}.toml")
        assert sweep.tier == tier and sweep.models == tiers.smoke_models() and sweep.seeds == (0, 1, 2)
    smoke = sw.load_sweep(lb.default_root() / "sweeps" / "smoke.toml")
    assert smoke.leaderboard == lb.version_dir().resolve() and not smoke.evaluation
    assert set(tiers.SMOKE_DATASETS) <= set(smoke.datasets)


@pytest.mark.parametrize("body, models, message", [
    ("", '["no-such-model"]', "unknown model 'no-such-model'"),
    ('[overrides.one-head]\nno_such_key = 1\n', '["one-head"]', "unknown key 'no_such_key'"),
    ("colour = 1\n", '["random"]', "unknown key 'colour'"),
    ("", '"everything"', "'models' must be a non-empty list"),
    ("", '["random", "random"]', "lists a name twice"),
    ('[overrides.one-head]\nepochs = 1\n', '["random"]', "one-head is neither in 'models' nor an upstream stage"),
])
def test_bad_grid_is_one_line_error(tmp_path, capsys, body, models, message):
    code = main(["sweep", str(write_grid(tmp_path, body, models=models)), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_dataset_seeds_toml_and_evaluation_are_errors(tmp_path):
    good = write_grid(tmp_path).read_text()
    cases = {
        good.replace("dsprites-procedural", "dsprites-imaginary"): "unknown dataset 'dsprites-imaginary'",
        good.replace("seeds = [0]", "seeds = [-1]"): "'seeds' must be a non-empty list of non-negative integers",
        good.replace('tier = "smoke"', 'tier = "huge"'): "unknown tier 'huge'",
        good.replace("models = [", "models = [[", 1): "invalid TOML",
        good.replace("n_points", "n_pointz"): "[evaluation]: unknown key 'n_pointz'",
        good.replace('datasets = ["dsprites-procedural"]\n', ""): "missing key 'datasets'",
    }
    for n, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.toml"
        path.write_text(text)
        with pytest.raises((sw.SweepError, ValueError), match=message.replace("[", r"\[")):
            sw.expand(sw.load_sweep(path))
    with pytest.raises(FileNotFoundError, match="sweep file .* not found"):
        sw.load_sweep(tmp_path / "missing.toml")


def test_upstream_stage_is_not_rerun_once_its_dependents_have_rows(tmp_path):
    sweep = sw.load_sweep(write_grid(tmp_path, models='["kf"]'))
    cells = sw.expand(sweep)
    assert [c.model for c in sw.todo_cells(sweep, cells)] == ["kf-teacher", "kf"]
    row = {"record_format": "disentbench-score-record", "record_format_version": 1, "record_id": "kf0123456789",
           "model": "kf", "model_config_hash": "ab" * 8, "dataset": "dsprites-procedural", "dataset_version": "1",
           "tier": "custom", "seed": 0, "preset": cells[1].spec["evaluation"]["preset"], "metrics": {"mig.score": 0.1},
           "disentbench_version": "0.1.0", "metric_definitions_version": "1", "leaderboard_version": lb.LEADERBOARD_VERSION,
           "commit": "unknown", "created": "2026-11-30T07:00:00Z"}
    lb.add_records([row], sweep.leaderboard)
    assert sw.todo_cells(sweep, cells) == []


# -- hashing ---------------------------------------------------------------------------------------------------
def test_cell_id_is_the_hash_of_the_sorted_spec():
    assert sw.cell_id({"b": 1, "a": {"y": 2, "x": 3}}) == sw.cell_id({"a": {"x": 3, "y": 2}, "b": 1})
    assert sw.cell_id({"a": 1}) != sw.cell_id({"a": 2})
    assert len(sw.cell_id({"a": 1})) == 16
    spec = {"model": "m", "train": {"epochs": 1, "source": "a paper"}}
    assert sw.cell_id(spec) == sw.cell_id({**spec, "train": {"epochs": 1, "source": "reworded"}})


def test_cell_ids_follow_the_resolved_spec(tmp_path):
    base = {c.name: c.id for c in sw.expand(sw.load_sweep(write_grid(tmp_path, models='["random", "kf"]')))}
    again = {c.name: c.id for c in sw.expand(sw.load_sweep(write_grid(tmp_path, models='["random", "kf"]')))}
    assert base == again
    # the tier's own value as an override resolves to the same spec: same cells
    same = write_grid(tmp_path, "[overrides.random]\nepochs = 0\n", models='["random", "kf"]', name="same.toml")
    assert {c.name: c.id for c in sw.expand(sw.load_sweep(same))} == base
    # a changed teacher changes the teacher's cell and the student's (it trains on it), not random's
    teacher = write_grid(tmp_path, "[overrides.kf-teacher]\nepochs = 1\n", models='["random", "kf"]', name="t.toml")
    changed = {c.model: c.id for c in sw.expand(sw.load_sweep(teacher))}
    ids = {name.split("_")[0]: cid for name, cid in base.items()}
    assert changed["random"] == ids["random"]
    assert changed["kf-teacher"] != ids["kf-teacher"] and changed["kf"] != ids["kf"]
    # another seed, another evaluation: other cells
    assert not set(base.values()) & {c.id for c in sw.expand(sw.load_sweep(
        write_grid(tmp_path, models='["random", "kf"]', seeds="[1]", name="s.toml")))}
    assert sw.expand(sw.load_sweep(write_grid(tmp_path, models='["random"]', evaluation="", name="e.toml")))[0].id \
        != ids["random"]


# -- cells -----------------------------------------------------------------------------------------------------
def prepare(path):
    sweep = sw.load_sweep(path)
    cells = sw.expand(sweep)
    by_id = {c.id: c for c in cells}
    return sweep, cells, [sc.write_cell(sweep, c, by_id) for c in cells]


def test_cell_runs_once_and_its_row_lands_once(tmp_path, monkeypatch):
    sweep, cells, dirs = prepare(write_grid(tmp_path, models='["ground-truth", "random"]'))
    assert [sc.run_cell(d) for d in dirs] == ["done", "done"]
    table = rows(sweep)
    assert [(r["model"], r["tier"], r["seed"]) for r in table] == [("ground-truth", "custom", "0"),
                                                                   ("random", "custom", "0")]
    assert (dirs[1] / "run" / "model.pt").is_file() and sc.read_state(dirs[1])["state"] == "done"
    # a second run of a finished cell does nothing
    assert [sc.run_cell(d) for d in dirs] == ["skipped", "skipped"]
    assert rows(sweep) == table
    assert sw.todo_cells(sweep, cells) == []
    # the row went missing after the record was written: added again from record.json, not re-evaluated
    lb.table_path(sweep.leaderboard, "custom").unlink()
    from disentbench.evaluation import runs

    monkeypatch.setattr(runs, "evaluate", lambda *a, **k: pytest.fail("re-evaluated"))
    assert sc.run_cell(dirs[1]) == "done"
    assert [r["record_id"] for r in rows(sweep)] == [table[1]["record_id"]]


def test_collapsed_record_is_the_cells_failure_with_its_message(tmp_path, monkeypatch):
    sweep, cells, dirs = prepare(write_grid(tmp_path))
    from disentbench.evaluation import runs

    real = runs.evaluate
    monkeypatch.setattr(runs, "evaluate", lambda *a, **k: {**real(*a, **k), "collapsed_dimensions": [0]})
    with pytest.raises(lb.LeaderboardError, match=r"1 of \d+ code dimensions collapsed"):
        sc.run_cell(dirs[0])
    state = sc.read_state(dirs[0])
    assert state["state"] == "failed" and "--force-collapsed" in state["error"] and rows(sweep) == []
    assert sw.sweep_status(sweep, cells)[0].state == "failed"
    # the record is kept: adding it by hand, forced, finishes the cell
    record = str(dirs[0] / sc.RECORD_FILE)
    board = str(sweep.leaderboard)
    assert main(["leaderboard", "add", record, "--dir", board, "--force-collapsed", "--no-render"]) == 0
    assert sc.run_cell(dirs[0]) == "skipped" and [r["collapsed_dims"] for r in rows(sweep)] == ["1"]


def test_partial_cell_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    tiny = "[overrides.one-head]\nsubset = 128\nepochs = 1\nbatch_size = 32\ncheckpoint_every_steps = 1\n"
    sweep, cells, dirs = prepare(write_grid(tmp_path, tiny, models='["one-head"]'))
    from disentbench import training

    calls = []
    real = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: calls.append(k["resume"]) or real(*a, **k))
    assert sc.run_cell(dirs[0]) == "done"
    run = dirs[0] / "run"
    # as if killed after its last checkpoint: no model.pt, no row
    (run / "model.pt").unlink()
    lb.table_path(sweep.leaderboard, "custom").unlink()
    (dirs[0] / "record.json").unlink()
    assert sw.sweep_status(sweep, cells)[0].state == "partial"
    assert sc.run_cell(dirs[0]) == "done"
    assert calls == [False, True] and (run / "model.pt").is_file() and len(rows(sweep)) == 1


def test_status_view_shows_each_state_and_log(tmp_path):
    sweep, cells, dirs = prepare(write_grid(tmp_path, models='["ground-truth", "random", "kf", "one-head"]'))
    gt, random_, teacher, kf, one_head = dirs
    assert sc.run_cell(gt) == "done"
    (teacher / "run").mkdir()
    (teacher / "run" / "model.pt").write_bytes(b"")  # an upstream-only cell is done when its run is
    sc.write_state(random_, state="failed", error="ValueError: boom", log=str(random_ / "log.txt"))
    (one_head / "run").mkdir()
    (one_head / "run" / "checkpoint.pt").write_bytes(b"")
    from filelock import FileLock

    with FileLock(str(kf / sc.LOCK_FILE)):
        sc.write_state(kf, state="running", pid=123, host="here", attempt=1)
        states = {s.cell.model: s for s in sw.sweep_status(sweep, cells)}
        text = sw.format_status(list(states.values()))
    assert {m: s.state for m, s in states.items()} == {
        "ground-truth": "done", "random": "failed", "kf-teacher": "done", "kf": "running", "one-head": "partial"}
    assert "ValueError: boom" in states["random"].detail and states["random"].log == str(random_ / "log.txt")
    assert f"log {random_ / 'log.txt'}" in text and "pid 123 on here" in text
    assert text.splitlines()[-1] == "5 cells: 2 done, 1 running, 0 queued, 1 failed, 1 partial, 0 pending"
    # the lock is released: kf no longer runs; nothing of it on disk but its state: pending
    assert {s.cell.model: s.state for s in sw.sweep_status(sweep, cells)}["kf"] == "pending"


# -- local backend and CLI -------------------------------------------------------------------------------------
def test_local_sweep_runs_cells_and_rerun_runs_nothing(tmp_path, capsys):
    path = write_grid(tmp_path, models='["ground-truth", "random"]', seeds="[0, 1]")
    assert main(["sweep", str(path), "--no-progress", "--no-render"]) == 0
    sweep = sw.load_sweep(path)
    assert sorted((r["model"], r["seed"]) for r in rows(sweep)) == [
        ("ground-truth", "0"), ("ground-truth", "1"), ("random", "0"), ("random", "1")]
    assert "this run: 4 done, 0 failed, 0 blocked" in capsys.readouterr().out
    assert main(["sweep", str(path), "--no-progress", "--no-render"]) == 0
    assert "this run: 0 done" in capsys.readouterr().out and len(rows(sweep)) == 4
    assert main(["sweep", "status", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("4 cells: 4 done")


def test_failing_cell_is_retried_then_reported_with_its_log(tmp_path, capsys):
    path = write_grid(tmp_path, models='["ground-truth"]', evaluation='[evaluation]\nmetrics = "no-such-metric"\n')
    assert main(["sweep", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    log = sw.load_sweep(path).work_dir / sw.expand(sw.load_sweep(path))[0].name / "log.txt"
    assert log.read_text().count("--- attempt") == 2  # retries = 1
    assert "no-such-metric" in log.read_text()
    assert f"log {log}" in out and "this run: 0 done, 1 failed" in out


def test_slurm_backend_without_submitit_says_how_to_install(tmp_path, monkeypatch):
    import disentbench.sweep.slurm as slurm

    monkeypatch.setattr(slurm, "submitit", None)
    sweep = sw.load_sweep(write_grid(tmp_path))
    with pytest.raises(sw.SweepError, match=r"pip install 'disentbench\[slurm\]'"):
        run_slurm(sweep, sw.expand(sweep), sw.expand(sweep), options=slurm.SlurmOptions())


def test_dry_run_runs_nothing(tmp_path, capsys):
    path = write_grid(tmp_path, models='["ground-truth", "kf"]')
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert "would run 3 of 3 cells" in capsys.readouterr().out
    assert not (tmp_path / "cells").exists() and not (tmp_path / "lb").exists()
    assert json.loads(json.dumps(sw.expand(sw.load_sweep(path))[0].spec))["record_tier"] == "custom"


def test_a_part_of_the_file_runs_the_files_own_cells(tmp_path, capsys):
    path = write_grid(tmp_path, models='["ground-truth", "random", "kf"]', seeds="[0, 1, 2]")
    whole = sw.load_sweep(path)
    part = sw.subset(whole, models=["kf", "ground-truth"], seeds=[2, 0])
    assert (part.models, part.seeds, part.datasets) == (("ground-truth", "kf"), (0, 2), whole.datasets)
    cells = {c.id: c for c in sw.expand(whole)}
    chosen = sw.expand(part)
    assert [(c.model, c.seed, c.scored) for c in chosen] == [
        ("ground-truth", 0, True), ("kf-teacher", 0, False), ("kf", 0, True),
        ("ground-truth", 2, True), ("kf-teacher", 2, False), ("kf", 2, True)]
    assert all(c.id in cells and cells[c.id].spec == c.spec for c in chosen)  # the same cells, the same folders
    with pytest.raises(sw.SweepError, match="'beta-vae' is not in the file's 'models'"):
        sw.subset(whole, models=["beta-vae"])
    with pytest.raises(sw.SweepError, match="3 is not in the file's 'seeds'"):
        sw.subset(whole, seeds=[3])
    assert main(["sweep", str(path), "--models", "random", "--seeds", "1,2", "--dry-run"]) == 0
    assert "would run 2 of 2 cells" in capsys.readouterr().out
    assert main(["sweep", "status", str(path), "--models", "random"]) == 0
    assert capsys.readouterr().out.count("random ") == 3
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "--seeds", "1,x"])
    assert "seeds must be comma-separated integers, got '1,x'" in capsys.readouterr().err


def test_overrides_or_another_evaluation_send_rows_to_the_custom_table(tmp_path):
    """A sweep that overrides a model's budget writes to ``custom``, never over the tier's reference rows; only a sweep
    with the tier's budgets and protocol writes to the tier's table."""
    plain = write_grid(tmp_path, evaluation="", name="plain.toml")
    budget = write_grid(tmp_path, "[overrides.random]\nepochs = 0\n", models='["random"]', evaluation="",
                        name="budget.toml")
    assert sw.record_tier(sw.load_sweep(plain)) == "smoke"
    assert sw.record_tier(sw.load_sweep(budget)) == "custom"
    assert sw.record_tier(sw.load_sweep(write_grid(tmp_path, name="cheap.toml"))) == "custom"
