"""single-task's leaderboard row is seed 004's "single-mean": the mean over one run per task (registry
``row="mean-over-tasks"``), each task run in ``run_dir/task_KK/`` with its own score record."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentbench import evaluation as ev  # noqa: E402
from disentbench import leaderboard as lb  # noqa: E402
from disentbench import tiers  # noqa: E402
from disentbench.cli import main  # noqa: E402
from disentbench.models import register_model  # noqa: E402
from model_checks import TinySquares  # noqa: E402
from test_evaluation import random_checkpoint, toy_dataset  # noqa: E402

N_TASKS = 10  # reference_models/single-task.toml [data] n_tasks
#: a cheap smoke protocol: two metrics, every grid point, no multi-task protocol (5 s a model here), no bootstrap
CHEAP = {"metrics": "mig,modularity", "preset": "fast", "n_points": None, "tasks": None, "bootstrap_resamples": 0}


@pytest.fixture
def cheap_smoke(tmp_path, monkeypatch):
    """The toy dataset under its name, a fresh code cache, and :data:`CHEAP` as the smoke protocol."""
    import disentbench.data

    toy = toy_dataset()
    monkeypatch.setenv("DISENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: toy, raising=False)
    monkeypatch.setitem(tiers.TIER_PROTOCOLS, "smoke", CHEAP)
    return toy


def fake_row(run_dir: Path) -> Path:
    """A trained single-task row without training: a seeded random encoder per task folder (seed = task index)."""
    for folder, index in ev.row_runs("single-task", run_dir):
        random_checkpoint(folder / "model.pt", seed=index)
    return run_dir


def test_single_task_declares_its_row_and_other_models_do_not():
    assert ev.mean_over_tasks("single-task")
    assert not any(ev.mean_over_tasks(m) for m in ("multi-head", "one-head", "random", ev.GROUND_TRUTH))
    runs = ev.row_runs("single-task", Path("row"))
    assert runs[0] == (Path("row/task_00"), 0) and runs[-1] == (Path("row/task_09"), 9) and len(runs) == N_TASKS
    assert ev.row_runs("multi-head", Path("row")) == [(Path("row"), None)]
    assert ev.task_spec({"data": {"subset": 1, "task_index": 0}}, 7) == {"data": {"subset": 1, "task_index": 7}}


def test_a_mean_over_tasks_row_needs_task_targets_and_a_known_row():
    with pytest.raises(ValueError, match="needs a model trained on task targets"):
        register_model("x-no-targets", family="t", source="s", needs=("images",), config=dict, row="mean-over-tasks")
    with pytest.raises(ValueError, match="row 'median' is not one of"):
        register_model("x-median", family="t", source="s", needs=("images",), config=dict, row="median")


def test_train_run_trains_one_run_per_task_and_resumes_from_the_finished_ones(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.pt").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    row = tmp_path / "single-task_toy_0"
    for k in range(3):  # tasks 0-2 finished, task 3 interrupted after a checkpoint
        ev.task_dir(row, k).mkdir(parents=True)
        (ev.task_dir(row, k) / "model.pt").write_bytes(b"x")
    (ev.task_dir(row, 3)).mkdir()
    (ev.task_dir(row, 3) / "checkpoint.pt").write_bytes(b"x")
    assert ev.train_run("single-task", "toy", 0, "smoke", row) == row
    assert [int(c[c.index("--task-index") + 1]) for c in calls] == list(range(3, N_TASKS))
    assert [c[c.index("--out") + 1] for c in calls] == [str(ev.task_dir(row, k)) for k in range(3, N_TASKS)]
    assert ["--resume" in c for c in calls] == [True] + [False] * (N_TASKS - 4)
    assert ev.is_trained("single-task", row)
    ev.train_run("single-task", "toy", 0, "smoke", row)
    assert len(calls) == N_TASKS - 3  # a finished row trains nothing
    # a model without the declaration: one run in the folder itself, no task index
    assert ev.train_run("multi-head", "toy", 0, "smoke", tmp_path / "mh") == tmp_path / "mh" / "model.pt"
    assert "--task-index" not in calls[-1] and calls[-1][calls[-1].index("--out") + 1] == str(tmp_path / "mh")


def test_the_row_record_is_the_mean_of_the_task_records_and_validates(tmp_path, cheap_smoke):
    row = fake_row(tmp_path / "row")
    record = ev.evaluate_run(row, "single-task", "toy", 0, "smoke")
    assert ev.validate_record(record, "aggregate") is record
    members = [ev.read_record(ev.task_dir(row, k) / "record.json") for k in range(N_TASKS)]
    assert {m["model"] for m in members} == {"single-task"} and len({m["record_id"] for m in members}) == N_TASKS
    assert set(record["metrics"]) == set(members[0]["metrics"]) >= {"mig.score", "modularity.score"}
    for key, value in record["metrics"].items():
        column = [m["metrics"][key] for m in members]
        assert value == pytest.approx(np.mean(column), abs=1e-12)
        assert record["aggregate"]["std"][key] == pytest.approx(np.std(column, ddof=1), abs=1e-12)
    assert record["aggregate"] == {**record["aggregate"], "over": "tasks", "rule": "mean", "n": N_TASKS,
                                   "records": [f"task_{k:02d}/record.json" for k in range(N_TASKS)],
                                   "record_ids": [m["record_id"] for m in members]}
    assert record["model_source"]["path"] == str(row) and record["record_id"] not in record["aggregate"]["record_ids"]
    assert "intervals" not in record and (record["seed"], record["tier"], record["model"]) == (0, "smoke", "single-task")
    lb.add_records([record], tmp_path / f"v{lb.LEADERBOARD_VERSION}")  # a valid leaderboard row


def test_the_row_record_carries_the_bootstrap_interval_of_the_mean(tmp_path, cheap_smoke, monkeypatch):
    """With the bootstrap on, the members share resample b (same points, same seed), so the row's replicate b is
    the mean of theirs and its interval comes from those means."""
    monkeypatch.setitem(tiers.TIER_PROTOCOLS, "smoke", {**CHEAP, "bootstrap_resamples": 12, "bootstrap_level": 0.9})
    row = fake_row(tmp_path / "row")
    record = ev.evaluate_run(row, "single-task", "toy", 0, "smoke")
    ev.validate_record(record, "aggregate")
    members = [ev.read_record(ev.task_dir(row, k) / "record.json") for k in range(N_TASKS)]
    assert set(record["intervals"]) == set(record["metrics"]) == set(members[0]["intervals"])
    for key, (low, high) in record["intervals"].items():
        means = np.mean([m["bootstrap"]["replicates"][key] for m in members], axis=0)
        assert record["bootstrap"]["replicates"][key] == pytest.approx(means, abs=1e-12)
        assert [low, high] == pytest.approx(np.quantile(means, [0.05, 0.95]), abs=1e-12)
    assert record["bootstrap"]["metrics"] == {"mig": 12, "modularity": 12} and record["bootstrap"]["level"] == 0.9


def test_multitask_rmse_of_the_row_is_the_mean_of_each_task_models_rmse(tmp_path, cheap_smoke):
    """Each task model's ``multitask.rmse`` is its Table-1 RMSE on all ten tasks; the row's is their mean, and
    ``tasks.rmse_per_task`` is averaged element-wise, so its mean is again the row's score."""
    row = fake_row(tmp_path / "row")
    runs = ev.row_runs("single-task", row)[:3]
    members = []
    for k, (folder, _) in enumerate(runs):
        record = ev.evaluate(folder / "model.pt", "toy", seed=0, tier="smoke", name="single-task", progress=False,
                             **tiers.evaluation_settings("smoke"))
        per_task = [1.0 + k + t / 10 for t in range(10)]  # as the multi-task protocol writes them
        record["metrics"]["multitask.rmse"] = float(np.mean(per_task))
        record["tasks"] = {"default": True, "n_tasks": 10, "epochs": 10, "rmse_per_task": per_task}
        members.append(record)
    record = ev.aggregate_records(members, [f / "record.json" for f, _ in runs], row, ["task 0", "task 1", "task 2"])
    assert record["metrics"]["multitask.rmse"] == pytest.approx(np.mean([m["metrics"]["multitask.rmse"] for m in members]))
    assert record["tasks"]["rmse_per_task"] == pytest.approx([2.0 + t / 10 for t in range(10)])
    assert np.mean(record["tasks"]["rmse_per_task"]) == pytest.approx(record["metrics"]["multitask.rmse"])
    ev.validate_record(record, "aggregate")


def test_a_key_missing_in_one_task_record_is_left_out_and_said(tmp_path, cheap_smoke):
    row = fake_row(tmp_path / "row")
    members = [ev.evaluate(folder / "model.pt", "toy", seed=0, tier="smoke", name="single-task", progress=False,
                           **tiers.evaluation_settings("smoke")) for folder, _ in ev.row_runs("single-task", row)]
    del members[4]["metrics"]["mig.score"]
    paths = [folder / "record.json" for folder, _ in ev.row_runs("single-task", row)]
    labels = [f"task {k}" for k in range(N_TASKS)]
    record = ev.aggregate_records(members, paths, row, labels)
    assert "mig.score" not in record["metrics"] and "modularity.score" in record["metrics"]
    assert any("left out" in w and "mig.score" in w for w in record["warnings"])
    ev.validate_record(record, "aggregate")
    members[2] = {**members[2], "seed": 1}
    with pytest.raises(ev.EvaluationError, match="disagree on 'seed'"):
        ev.aggregate_records(members, paths, row, labels)


def test_counts_are_averaged_outside_the_metrics_so_the_row_joins_a_table(tmp_path, cheap_smoke):
    """A mean of counts (7.9 active dimensions) is not a count: it goes to ``aggregate.count_means`` and the
    row leaves the column empty (found on the first v2 single-task row, refused by the table's count check)."""
    row = fake_row(tmp_path / "row")
    members = [ev.evaluate(folder / "model.pt", "toy", seed=0, tier="smoke", name="single-task", progress=False,
                           **tiers.evaluation_settings("smoke")) for folder, _ in ev.row_runs("single-task", row)]
    for k, member in enumerate(members):
        member["metrics"]["factor_vae.num_active_dims"] = 8.0 if k else 7.0
    paths = [folder / "record.json" for folder, _ in ev.row_runs("single-task", row)]
    record = ev.aggregate_records(members, paths, row, [f"task {k}" for k in range(N_TASKS)])
    assert "factor_vae.num_active_dims" not in record["metrics"] and "mig.score" in record["metrics"]
    assert record["aggregate"]["count_means"] == {"factor_vae.num_active_dims": pytest.approx(7.9)}
    ev.validate_record(record, "aggregate")
    lb.add_records([record], tmp_path / f"v{lb.LEADERBOARD_VERSION}")
    with pytest.raises(lb.LeaderboardError, match="outside the declared range"):  # what the table refuses
        lb.add_records([{**record, "seed": 1, "metrics": {**record["metrics"], "factor_vae.num_active_dims": 7.9}}],
                       tmp_path / f"v{lb.LEADERBOARD_VERSION}")


def test_an_interrupted_row_evaluation_reuses_the_task_records_it_wrote(tmp_path, cheap_smoke, monkeypatch):
    """Task records of the same model file (written after it) and settings are reused; a missing record, a
    retrained model and other settings are evaluated again, and the row's record is the same."""
    from disentbench.evaluation import runs

    row = fake_row(tmp_path / "row")
    first = ev.evaluate_run(row, "single-task", "toy", 0, "smoke")
    calls = []
    real = runs.evaluate
    monkeypatch.setattr(runs, "evaluate", lambda path, *a, **kw: calls.append(path) or real(path, *a, **kw))
    (ev.task_dir(row, 3) / "record.json").unlink()  # interrupted before task 3 was scored
    model_5 = ev.task_dir(row, 5) / "model.pt"
    later = (ev.task_dir(row, 5) / "record.json").stat().st_mtime + 5
    os.utime(model_5, (later, later))  # task 5 retrained after its record was written
    again = ev.evaluate_run(row, "single-task", "toy", 0, "smoke")
    assert calls == [ev.task_dir(row, 3) / "model.pt", model_5]
    assert again["metrics"] == first["metrics"] and again["record_id"] == first["record_id"]
    calls.clear()
    ev.evaluate_run(row, "single-task", "toy", 0, "smoke", bootstrap_resamples=3)  # other settings: all again
    assert len(calls) == N_TASKS


def test_an_unfinished_row_is_not_scored(tmp_path, cheap_smoke):
    row = fake_row(tmp_path / "row")
    (ev.task_dir(row, 6) / "model.pt").unlink()
    with pytest.raises(ev.EvaluationError, match="1 of 10 task runs of single-task are not trained.*task_06"):
        ev.evaluate_run(row, "single-task", "toy", 0, "smoke")


def test_populate_writes_the_mean_row_and_keeps_one_run_rows(tmp_path, cheap_smoke, monkeypatch):
    trained = []

    def fake_train(model, dataset, seed, tier, run_dir, **kw):
        trained.append(model)
        return fake_row(run_dir) if ev.mean_over_tasks(model) else random_checkpoint(run_dir / "model.pt", seed=seed)

    monkeypatch.setattr(ev, "train_run", fake_train)
    board, runs = tmp_path / f"v{lb.LEADERBOARD_VERSION}", tmp_path / "runs"
    argv = ["leaderboard", "populate", "--dir", str(board), "--models", "single-task,random", "--datasets", "toy",
            "--seeds", "0", "--work-dir", str(runs)]
    assert main(argv) == 0 and trained == ["single-task", "random"]
    row = runs / "smoke" / "single-task_toy_0"
    record = ev.read_record(row / "record.json")
    assert record["aggregate"]["n"] == N_TASKS and (row / "task_09" / "record.json").is_file()
    assert "aggregate" not in ev.read_record(runs / "smoke" / "random_toy_0" / "record.json")
    assert sorted(r["model"] for r in lb.check(board)[0].rows) == ["random", "single-task"]
    assert main(argv + ["--reevaluate"]) == 0  # the row folder counts as trained: re-scored, nothing retrained
    assert trained == ["single-task", "random"] * 2


def test_a_real_tiny_row_is_deterministic(tmp_path, monkeypatch):
    """Ten real 3-step trainings per row (the loop's seeding): same seed, same mean record metrics."""
    import disentbench.data
    from disentbench.training import resolve_spec, train

    tiny = TinySquares()
    monkeypatch.setenv("DISENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: tiny, raising=False)
    spec = resolve_spec("single-task", tier="smoke", seed=3, dataset=tiny.name, threads=1,
                        overrides={"subset": 0, "epochs": 1, "batch_size": 16, "head_hidden": [8]})
    settings = {**CHEAP, "tasks": None}
    records = []
    for name in ("a", "b"):
        for folder, index in ev.row_runs("single-task", tmp_path / name):
            train(ev.task_spec(spec, index), folder, dataset=tiny, progress=False)
        records.append(ev.evaluate_tasks(tmp_path / name, "single-task", tiny.name, seed=3, tier="smoke", **settings))
    assert records[0]["metrics"] == records[1]["metrics"] and records[0]["record_id"] == records[1]["record_id"]
    configs = [json.loads((ev.task_dir(tmp_path / "a", k) / "config.json").read_text()) for k in (0, 9)]
    assert [c["data"]["task_index"] for c in configs] == [0, 9]


def test_a_sweep_cell_of_single_task_trains_every_task_and_resumes(tmp_path, monkeypatch):
    """The sweep's cell: one run per task in run/task_KK (an interrupted cell keeps its finished tasks), the mean
    record as the cell's record.json and one row; the row rule is part of the cell's spec (hence of its id)."""
    from disentbench import sweep as sw
    from disentbench import training
    from disentbench.sweep import cells as sc

    grid = tmp_path / "grid.toml"
    grid.write_text('tier = "smoke"\nmodels = ["single-task"]\ndatasets = ["dsprites-procedural"]\nseeds = [0]\n'
                    f'leaderboard = "lb/v{lb.LEADERBOARD_VERSION}"\n'
                    'work_dir = "cells"\nthreads = 1\n'
                    '[evaluation]\nmetrics = "mig"\nn_points = 200\ntasks = false\nbootstrap_resamples = 0\n')
    sweep = sw.load_sweep(grid)
    (cell,) = sw.expand(sweep)
    assert cell.spec["row"] == "mean-over-tasks"
    directory = sc.write_cell(sweep, cell, {cell.id: cell})
    calls = []

    def fake_train(spec, out, *, resume, **kw):
        index = spec["data"]["task_index"]
        calls.append((index, resume))
        if index == 4 and not resume:  # killed after a checkpoint
            Path(out).mkdir(parents=True)
            (Path(out) / "checkpoint.pt").write_bytes(b"x")
            raise KeyboardInterrupt("killed")
        random_checkpoint(Path(out) / "model.pt", seed=index)

    monkeypatch.setattr(training, "train", fake_train)
    with pytest.raises(KeyboardInterrupt):
        sc.run_cell(directory)
    assert sw.sweep_status(sweep, [cell])[0].state == "failed" and calls == [(k, False) for k in range(5)]
    sc.write_state(directory, state="pending")  # as a cell killed with no chance to say so
    status = sw.sweep_status(sweep, [cell])[0]
    assert status.state == "partial" and status.detail.startswith("4 of 10 task runs finished")
    assert sc.run_cell(directory) == "done"
    assert calls[5:] == [(4, True)] + [(k, False) for k in range(5, N_TASKS)]
    record = ev.read_record(directory / sc.RECORD_FILE)
    assert record["aggregate"]["n"] == N_TASKS and record["model_source"]["path"] == str(directory / sc.RUN_DIR)
    table = lb.read_table(lb.table_path(sweep.leaderboard, "custom")).rows
    assert [(r["model"], r["record_id"]) for r in table] == [("single-task", record["record_id"])]
