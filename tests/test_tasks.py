"""Tests of the random-network task generator (seed 004, sec. 3.1 and app. H) and its HDF5 files."""

import hashlib
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from disentbench import cli
from disentbench.factors import FactorSpace
from disentbench.tasks import (
    GENERATOR_VERSION,
    TargetStatistics,
    TaskSet,
    load_statistics,
    load_targets,
    load_task_set,
)

DSPRITES = FactorSpace(("shape", "scale", "orientation", "posX", "posY"), (3, 6, 40, 32, 32))
SMALL = FactorSpace(("a", "b", "c", "d"), (3, 4, 5, 6))  # 360 points


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in Path(directory).iterdir())


# -- the networks -------------------------------------------------------------------------------
def test_defaults_follow_the_paper():
    ts = TaskSet.generate(DSPRITES)
    assert (ts.n_tasks, ts.hidden_layers, ts.hidden_width, ts.activation, ts.factors) == (10, 4, 300, "tanh", "all")
    shapes = [w.shape for w in ts.networks[0].weights]
    assert shapes == [(5, 300), (300, 300), (300, 300), (300, 300), (300, 1)]
    assert all(w.dtype == np.float32 for w in ts.networks[0].weights + ts.networks[0].biases)


def test_weights_and_biases_are_standard_normal():
    ts = TaskSet.generate(DSPRITES, 2, 0)
    weights = np.concatenate([w.ravel() for n in ts.networks for w in n.weights])
    biases = np.concatenate([b.ravel() for n in ts.networks for b in n.biases])
    assert abs(weights.mean()) < 0.01 and abs(weights.std() - 1) < 0.01
    assert abs(biases.mean()) < 0.1 and abs(biases.std() - 1) < 0.1


def test_pinned_values_of_generator_version_1():
    """A change here changes every task file: bump GENERATOR_VERSION (rtol covers BLAS/CPU rounding)."""
    assert GENERATOR_VERSION == 1
    ts = TaskSet.generate(DSPRITES, 3, 0)
    classes = np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31], [1, 3, 20, 16, 7]])
    expected = [
        [7.745877, 13.083716, -3.214636],
        [-5.5528436, -3.1501973, -5.314952],
        [-10.988299, 18.912748, 2.250621],
    ]
    np.testing.assert_allclose(ts.targets(classes), expected, rtol=1e-5)
    np.testing.assert_array_equal(ts.networks[0].weights[0][0, :3], np.float32([0.7859068, -0.9199529, 1.471579]))


def test_same_seed_same_tasks_other_seed_other_tasks():
    a, b, c = (TaskSet.generate(SMALL, 3, s, hidden_width=16) for s in (5, 5, 6))
    assert a.same_parameters(b)
    assert not a.same_parameters(c)


def test_task_i_does_not_depend_on_n_tasks():
    few = TaskSet.generate(SMALL, 2, 3, factors="random-subset", hidden_width=16)
    many = TaskSet.generate(SMALL, 7, 3, factors="random-subset", hidden_width=16)
    for a, b in zip(few.networks, many.networks):
        assert a.subset == b.subset
        assert all(np.array_equal(x, y) for x, y in zip(a.weights + a.biases, b.weights + b.biases))


def test_subset_task_is_full_task_with_unseen_factors_at_zero():
    full = TaskSet.generate(SMALL, 1, 11, hidden_width=32)
    part = TaskSet.generate(SMALL, 1, 11, factors=[("b", "d")], hidden_width=32)
    z = SMALL.normalised(SMALL.all_classes())
    clamped = z.copy()
    clamped[:, [0, 2]] = 0.0
    np.testing.assert_allclose(part.evaluate(z), full.evaluate(clamped), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", ["random-subset", "halves"])
def test_targets_depend_only_on_seen_factors(mode):
    ts = TaskSet.generate(SMALL, 8, 2, factors=mode, hidden_width=32)
    rng = np.random.default_rng(0)
    classes = SMALL.sample_classes(256, rng)
    base = ts.targets(classes)
    for t, subset in enumerate(ts.subsets):
        for k in range(SMALL.n_factors):
            moved = classes.copy()
            moved[:, k] = (moved[:, k] + rng.integers(1, SMALL.sizes[k], 256)) % SMALL.sizes[k]
            changed = ts.targets(moved)[:, t]
            if k in subset:
                assert np.mean(changed != base[:, t]) > 0.5, (t, k)
            else:
                np.testing.assert_array_equal(changed, base[:, t])


def test_halves_split_and_random_subsets():
    ts = TaskSet.generate(DSPRITES, 4, 0, factors="halves", hidden_width=8)
    assert ts.subsets == ((0, 1, 2), (3, 4), (0, 1, 2), (3, 4))  # odd K: the first half has ceil(K/2)
    assert TaskSet.generate(SMALL, 2, 0, factors="halves", hidden_width=8).subsets == ((0, 1), (2, 3))
    rs = TaskSet.generate(SMALL, 30, 0, factors="random-subset", hidden_width=8)
    assert all(s and list(s) == sorted(set(s)) for s in rs.subsets)
    assert len(set(rs.subsets)) > 5


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="positive integer"):
        TaskSet.generate(SMALL, 0)
    with pytest.raises(ValueError, match="non-negative"):
        TaskSet.generate(SMALL, 2, -1)
    with pytest.raises(ValueError, match="empty factor subset"):
        TaskSet.generate(SMALL, 2, factors=[(0,), ()])
    with pytest.raises(ValueError, match="2 factors"):
        TaskSet.generate(FactorSpace(("x",), (4,)), 2, factors="halves")
    with pytest.raises(ValueError, match="3 factor subsets for 2 tasks"):
        TaskSet.generate(SMALL, 2, factors=[(0,), (1,), (2,)])
    with pytest.raises(KeyError, match="unknown factor"):
        TaskSet.generate(SMALL, 1, factors=[("nope",)])
    with pytest.raises(ValueError, match="unknown factor mode"):
        TaskSet.generate(SMALL, 1, factors="some")
    with pytest.raises(ValueError, match="unknown activation"):
        TaskSet.generate(SMALL, 1, activation="gelu")


# -- evaluation -------------------------------------------------------------------------------
def test_evaluate_accepts_any_finite_values_and_checks_shape():
    ts = TaskSet.generate(SMALL, 3, 0, hidden_width=16)
    y = ts.evaluate([[0.5, 0.25, 1.7, -0.3]])
    assert y.shape == (1, 3) and y.dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        ts.evaluate(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        ts.evaluate([[0.0, np.nan, 0.0, 0.0]])
    classes = SMALL.sample_classes(50, 0)
    np.testing.assert_array_equal(ts.targets(classes), ts.evaluate(SMALL.normalised(classes)))


def test_results_do_not_depend_on_threads_and_agree_across_chunk_sizes():
    """Same chunk size: identical bytes for any thread count (and run to run). Other chunk sizes: equal to float32
    rounding only, because some BLAS kernels (OpenBLAS 0.3.31's Haswell sgemm, which it picks on Zen 5) sum a row
    differently by its position in the block; on others (its SkylakeX kernel on Zen 4) they are identical."""
    ts = TaskSet.generate(DSPRITES, 3, 0)
    z = DSPRITES.normalised(DSPRITES.sample_classes(130, 4))
    ref = ts.evaluate(z, chunk_size=4096, threads=1)
    for rows, chunk_size, threads in [(8, 1, 2), (130, 7, 1), (130, 64, 2), (130, 100, 3)]:
        got = ts.evaluate(z[:rows], chunk_size=chunk_size, threads=threads)
        np.testing.assert_array_equal(got, ts.evaluate(z[:rows], chunk_size=chunk_size, threads=1))
        np.testing.assert_allclose(got, ref[:rows], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(ts.evaluate(z, chunk_size=4096, threads=3), ref)


def test_tasks_are_nonlinear_non_constant_and_distinct():
    """Quality on a seeded 8,192-point sample of the dSprites grid (full-grid figures: docs/tasks.md)."""
    ts = TaskSet.generate(DSPRITES, 10, 0)
    classes = DSPRITES.sample_classes(8192, 0)
    z, y = DSPRITES.normalised(classes), ts.targets(classes)
    acc = TargetStatistics(DSPRITES.n_factors, ts.n_tasks)
    acc.update(z, y)
    stats = acc.result()
    assert stats.linear_r2.mean() < 0.5 and stats.linear_r2.max() < 0.9
    assert stats.std.min() > 1.0
    corr = np.corrcoef(y.T)
    assert np.abs(corr[np.triu_indices(10, 1)]).max() < 0.6


def test_statistics_match_direct_least_squares_and_linear_tasks_are_linear():
    z = SMALL.normalised(SMALL.all_classes())
    for activation, expect_linear in (("tanh", False), ("linear", True)):
        ts = TaskSet.generate(SMALL, 4, 1, hidden_width=24, activation=activation)
        y = ts.evaluate(z).astype(np.float64)
        acc = TargetStatistics(SMALL.n_factors, 4)
        for start in range(0, len(z), 100):  # streamed in uneven chunks
            acc.update(z[start : start + 100], y[start : start + 100])
        stats = acc.result()
        x = np.column_stack([np.ones(len(z)), z])
        resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        r2 = 1 - (resid**2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
        np.testing.assert_allclose(stats.mean, y.mean(0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(stats.std, y.std(0), rtol=1e-9)
        np.testing.assert_allclose(stats.linear_r2, r2, atol=1e-8)
        assert (stats.linear_r2.min() > 1 - 1e-6) == expect_linear


# -- files ------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    ts = TaskSet.generate(SMALL, 3, 7, factors="random-subset", hidden_width=16, activation="sigmoid")
    stats = ts.save(tmp_path / "t.h5", chunk_size=100)
    loaded = TaskSet.load(tmp_path / "t.h5")
    assert loaded.same_parameters(ts) and loaded.factors == "random-subset" and loaded.seed == 7
    assert loaded.factor_space == SMALL
    targets = load_targets(tmp_path / "t.h5")
    np.testing.assert_array_equal(targets, ts.targets(SMALL.all_classes(), chunk_size=100))
    np.testing.assert_array_equal(load_statistics(tmp_path / "t.h5").linear_r2, stats.linear_r2)
    with h5py.File(tmp_path / "t.h5") as f:
        description = json.loads(f.attrs["task_set"])
        assert f["targets"].chunks == (100, 3)
    assert description["generator_version"] == GENERATOR_VERSION
    assert description["options"]["activation"] == "sigmoid"
    assert description["subsets"] == [list(s) for s in ts.subsets]
    assert "class / (size - 1)" in description["normalisation"]


def test_load_warns_when_stored_parameters_differ_from_the_seed(tmp_path):
    TaskSet.generate(SMALL, 2, 0, hidden_width=8).save(tmp_path / "t.h5", grid=False)
    with h5py.File(tmp_path / "t.h5", "r+") as f:
        f["networks/task_001/b2"][0] += 1.0
    with pytest.warns(RuntimeWarning, match="differ"):
        loaded = load_task_set(tmp_path / "t.h5")
    assert loaded.networks[1].biases[1][0] == TaskSet.generate(SMALL, 2, 0, hidden_width=8).networks[1].biases[1][0] + 1
    with pytest.raises(ValueError, match="no grid targets"):
        load_targets(tmp_path / "t.h5")


def test_same_arguments_give_byte_identical_files(tmp_path):
    ts = TaskSet.generate(SMALL, 3, 0, hidden_width=32)
    ts.save(tmp_path / "a.h5", chunk_size=64)
    time.sleep(1.1)  # a stored timestamp would now differ
    TaskSet.generate(SMALL, 3, 0, hidden_width=32).save(tmp_path / "b.h5", chunk_size=64, threads=1)
    assert sha256(tmp_path / "a.h5") == sha256(tmp_path / "b.h5")


def test_save_refuses_existing_file_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    ts = TaskSet.generate(SMALL, 2, 0, hidden_width=8)
    ts.save(tmp_path / "t.h5")
    before = sha256(tmp_path / "t.h5")
    with pytest.raises(FileExistsError, match="already exists"):
        ts.save(tmp_path / "t.h5")

    def broken(*args, **kwargs):
        yield 0, np.zeros((1, 4)), np.zeros((1, 2), np.float32)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(TaskSet, "iter_grid", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ts.save(tmp_path / "t.h5", overwrite=True)
    assert leftovers(tmp_path) == ["t.h5"] and sha256(tmp_path / "t.h5") == before


def test_unwritable_or_missing_directory(tmp_path, monkeypatch):
    ts = TaskSet.generate(SMALL, 1, 0, hidden_width=8)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ts.save(tmp_path / "missing" / "t.h5")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)  # as root chmod cannot make a directory unwritable
    with pytest.raises(PermissionError, match="cannot write to directory"):
        ts.save(tmp_path / "t.h5")
    assert leftovers(tmp_path) == []


# -- CLI --------------------------------------------------------------------------------------
def test_cli_writes_file_and_summary(tmp_path, capsys):
    out = tmp_path / "tasks.h5"
    argv = ["generate-tasks", "--factor-sizes", "3,4,5", "--n-tasks", "4", "--seed", "1", "--factors", "halves",
            "--hidden-width", "32", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "linear R2" in text and "factor_0,factor_1" in text and "factor_2" in text
    ts = TaskSet.load(out)
    assert ts.subsets == ((0, 1), (2,), (0, 1), (2,)) and ts.hidden_width == 32
    first = sha256(out)
    assert cli.main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(argv + ["--overwrite"]) == 0 and sha256(out) == first


def test_cli_dataset_grid(tmp_path):
    out = tmp_path / "t.h5"
    argv = ["generate-tasks", "--dataset", "shapes3d", "--n-tasks", "1", "--hidden-width", "4", "--hidden-layers",
            "1", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    space = TaskSet.load(out).factor_space
    assert space.sizes == (10, 10, 10, 8, 4, 15) and load_targets(out).shape == (480000, 1)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "no-such-data"], "unknown dataset 'no-such-data'"),
        (["--factor-sizes", "3,4", "--n-tasks", "0"], "n_tasks must be a positive integer"),
        (["--factor-sizes", "7", "--factors", "halves"], "'halves' needs at least 2 factors"),
    ],
)
def test_cli_bad_input_clear_error_no_file(tmp_path, capsys, extra, message):
    out = tmp_path / "t.h5"
    assert cli.main(["generate-tasks", *extra, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_cli_unwritable_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    assert cli.main(["generate-tasks", "--factor-sizes", "3", "--out", str(tmp_path / "file" / "t.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_full_dsprites_grid_file_is_reproducible(tmp_path):
    """The CLI on the 737,280-point dSprites grid, twice: identical bytes; the stored stats are plausible."""
    argv = ["generate-tasks", "--dataset", "dsprites-procedural", "--no-progress", "--out"]
    assert cli.main(argv + [str(tmp_path / "a.h5")]) == 0
    assert cli.main(argv + [str(tmp_path / "b.h5"), "--threads", "1"]) == 0
    assert sha256(tmp_path / "a.h5") == sha256(tmp_path / "b.h5")
    stats = load_statistics(tmp_path / "a.h5")
    assert stats.n_points == 737280 and stats.linear_r2.mean() < 0.5 and stats.std.min() > 1.0
    targets = load_targets(tmp_path / "a.h5")
    idx = np.random.default_rng(0).integers(0, 737280, 300)
    np.testing.assert_array_equal(targets[idx], TaskSet.load(tmp_path / "a.h5").targets(DSPRITES.index_to_classes(idx)))
    assert os.path.getsize(tmp_path / "a.h5") > targets.nbytes


def test_cli_out_is_a_directory_is_a_one_line_error(tmp_path, capsys):
    """Issue 17.8: ``--out DIR --overwrite`` ended in a traceback."""
    args = ["generate-tasks", "--factor-sizes", "3", "--out", str(tmp_path), "--no-progress"]
    assert cli.main([*args, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "directory" in err and len(err.strip().splitlines()) == 1
    assert leftovers(tmp_path) == []
