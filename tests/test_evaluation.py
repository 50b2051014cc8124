"""Evaluation: TorchScript encoders, checkpoints, code files -> cached codes -> metrics -> score record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentbench import evaluation as ev  # noqa: E402
from disentbench import leaderboard as lb  # noqa: E402
from disentbench import tiers  # noqa: E402
from disentbench.cli import main  # noqa: E402
from model_checks import Bands  # noqa: E402


def toy_dataset():
    """3 factors (3, 4, 5 values); factor k sets the grey level of horizontal band k (class × 50)."""
    return Bands("toy", ("a", "b", "c"), (3, 4, 5), step=50)


class BandMeans(torch.nn.Module):
    """A perfect encoder for :func:`toy_dataset`: the mean of each band (codes = factor / 5.1)."""

    def forward(self, x):
        return torch.stack([x[:, 0, 0:21].mean((1, 2)), x[:, 0, 21:42].mean((1, 2)), x[:, 0, 42:].mean((1, 2))], 1)


class Flat(torch.nn.Module):
    def forward(self, x):
        return x.mean((1, 2, 3))


class WithNaN(torch.nn.Module):
    def forward(self, x):
        return x.mean((2, 3)) / 0.0 * 0.0


class Raises(torch.nn.Module):
    def forward(self, x):
        if x.shape[0] > 0:
            raise RuntimeError("this encoder is broken")
        return x.mean((1, 2, 3))


def script(module, path):
    torch.jit.script(module).save(str(path))
    return path


RANDOM_CONFIG = {"init": "default", "latent_dim": 4, "activation": "relu"}


def random_checkpoint(path, *, seed=0, channels=1):
    """A checkpoint of the untrained ``random`` encoder (4 codes), seeded: a deterministic stand-in for training."""
    from disentbench.checkpoint import save_model
    from disentbench.models import build_model
    from disentbench.models.base import ModelContext

    torch.manual_seed(seed)
    return save_model(path, build_model("random", RANDOM_CONFIG, ModelContext(channels=channels)))


@pytest.fixture
def toy():
    return toy_dataset()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISENTBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run(model, toy, **kw):
    kw.setdefault("metrics", "mig")
    kw.setdefault("n_points", None)
    return ev.evaluate(model, "toy", dataset=toy, progress=False, **kw)


def test_torchscript_perfect_encoder_scores_high_and_is_cached(tmp_path, toy, cache):
    model = script(BandMeans(), tmp_path / "enc.pt")
    first = run(model, toy, tier="smoke", name="bands")
    assert first["model"] == "bands" and first["dataset"] == "toy" and first["tier"] == "smoke"
    assert first["n_points"] == 60 and first["code_dim"] == 3
    assert first["metrics"]["mig.score"] > 0.9
    assert first["model_source"]["kind"] == "torchscript" and not first["codes_from_cache"]
    assert len(list((cache / "codes").glob("*.npz"))) == 1
    second = run(model, toy, tier="smoke", name="bands")
    assert second["codes_from_cache"] and second["metrics"] == first["metrics"]
    assert second["record_id"] == first["record_id"]
    for key in ("leaderboard_version", "metric_definitions_version", "disentbench_version", "commit", "created"):
        assert second[key]
    lb.add_records([first], tmp_path / f"v{lb.LEADERBOARD_VERSION}")  # a record is a valid leaderboard row


def test_seeded_sample_is_deterministic_and_covers_without_repeats():
    a, b = ev.sample_indices(1000, 100, seed=3), ev.sample_indices(1000, 100, seed=3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert not np.array_equal(a, ev.sample_indices(1000, 100, seed=4))
    assert np.array_equal(ev.sample_indices(50, 100, seed=0), np.arange(50))


def test_torchscript_wrong_output_shape(tmp_path, toy, cache):
    with pytest.raises(ev.EvaluationError, match=r"returned shape \(60,\).*expected \(60, d\)"):
        run(script(Flat(), tmp_path / "flat.pt"), toy, batch_size=64)


def test_nan_codes_rejected(tmp_path, toy, cache):
    with pytest.raises(ev.EvaluationError, match="NaN or infinite"):
        run(script(WithNaN(), tmp_path / "nan.pt"), toy)
    assert not list(cache.glob("codes/*.npz"))  # nothing cached


def test_code_file_matches_encoder_and_checks_dataset(tmp_path, toy, cache):
    enc = run(script(BandMeans(), tmp_path / "enc.pt"), toy)
    idx = np.arange(60)
    codes = BandMeans()(torch.as_tensor(ev.unit_images(toy.images(idx), toy))).numpy()
    good = tmp_path / "codes.npz"
    np.savez(good, codes=codes, indices=idx, dataset="toy", dataset_version="1")
    rec = run(good, toy)
    assert rec["model_source"]["kind"] == "codes" and rec["metrics"] == pytest.approx(enc["metrics"])
    other = tmp_path / "other.npz"
    np.savez(other, codes=codes, indices=idx, dataset="shapes3d-procedural")
    with pytest.raises(ev.EvaluationError, match="dataset 'shapes3d-procedural'.*'toy'"):
        run(other, toy)
    far = tmp_path / "far.npz"
    np.savez(far, codes=codes, indices=idx + 1000)
    with pytest.raises(ev.EvaluationError, match="another dataset"):
        run(far, toy)
    nan = tmp_path / "nan.npz"
    codes_nan = codes.copy()
    codes_nan[5, 1] = np.nan
    np.savez(nan, codes=codes_nan, indices=idx)
    with pytest.raises(ev.EvaluationError, match="row 5, dimension 1"):
        run(nan, toy)
    missing = tmp_path / "missing.npz"
    np.savez(missing, codes=codes)
    with pytest.raises(ev.EvaluationError, match="missing \\['indices'\\]"):
        run(missing, toy)


def test_checkpoint_of_ours(tmp_path, toy, cache):
    rec = run(random_checkpoint(tmp_path / "ckpt.pt"), toy)
    assert rec["model"] == "random" and rec["code_dim"] == 4
    assert rec["model_config_hash"] == ev.config_hash(RANDOM_CONFIG)
    with pytest.raises(ev.EvaluationError, match="3-channel images but toy has 1"):
        run(random_checkpoint(tmp_path / "rgb.pt", channels=3), toy)


def test_unknown_model_format(tmp_path, toy, cache):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ValueError, match="junk.bin"):
        run(junk, toy)
    with pytest.raises(FileNotFoundError):
        run(tmp_path / "absent.pt", toy)


def test_multitask_rmse_learns_and_is_deterministic():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(400, 3)).astype(np.float32)
    targets = np.stack([codes[:, 0] * 2, codes[:, 1] - codes[:, 2]], 1)
    a = ev.multitask_rmse(codes, targets, seed=1, epochs=15, lr=1e-2, hidden=(32,))
    b = ev.multitask_rmse(codes, targets, seed=1, epochs=15, lr=1e-2, hidden=(32,))
    assert np.array_equal(a, b) and a.shape == (2,)
    assert (a < 0.5 * targets.std(axis=0)).all()
    shuffled = ev.multitask_rmse(codes[::-1].copy(), targets, seed=1, epochs=15, lr=1e-2, hidden=(32,))
    assert (shuffled > 0.8 * targets.std(axis=0)).all()  # codes unrelated to the targets explain nothing


def test_ground_truth_pseudo_model_is_every_metric_s_upper_anchor(toy, cache):
    record = run(ev.GROUND_TRUTH, toy, metrics="mig,mig_sup,modularity")
    assert record["model"] == "ground-truth" and record["model_source"]["kind"] == "ground-truth"
    assert record["code_dim"] == 3 and record["n_points"] == toy.factor_space.n_points
    scores = record["metrics"]
    assert scores["mig.score"] == pytest.approx(1.0) and scores["modularity.score"] == pytest.approx(1.0)
    assert scores["mig_sup.score"] == pytest.approx(1.0)


def test_default_task_protocol_scores_rmse_and_records_each_task(toy, cache, tmp_path):
    from disentbench.tasks import default_task_set

    truth = run(ev.GROUND_TRUTH, toy, tasks=tiers.DEFAULT_TASKS, task_epochs=3)
    tasks = truth["tasks"]
    assert tasks["default"] and tasks["n_tasks"] == 10 and tasks["epochs"] == 3 and len(tasks["rmse_per_task"]) == 10
    assert truth["metrics"]["multitask.rmse"] == pytest.approx(np.mean(tasks["rmse_per_task"]))
    assert not any(k.startswith("multitask.rmse_task") for k in truth["metrics"])
    path = tmp_path / "tasks.h5"
    default_task_set(toy.factor_space).save(path, grid=False)
    from_file = run(ev.GROUND_TRUTH, toy, tasks=path, task_epochs=3)
    assert from_file["metrics"]["multitask.rmse"] == truth["metrics"]["multitask.rmse"]
    assert from_file["tasks"]["file"] == str(path) and len(from_file["tasks"]["sha256"]) == 64


def test_ground_truth_needs_no_training(tmp_path):
    assert ev.train_run(ev.GROUND_TRUTH, "toy", 0, "smoke", tmp_path / "run") == Path(ev.GROUND_TRUTH)
    assert not (tmp_path / "run").exists()


def test_cli_evaluate_writes_record_and_leaderboard(tmp_path, toy, cache, monkeypatch, capsys):
    import disentbench.data

    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: toy, raising=False)
    model = script(BandMeans(), tmp_path / "enc.pt")
    out, board = tmp_path / "rec.json", tmp_path / "lb" / f"v{lb.LEADERBOARD_VERSION}"
    argv = ["evaluate", "--model", str(model), "--dataset", "toy", "--metrics", "mig", "--n-points", "0",
            "--out", str(out), "--leaderboard", str(board), "--name", "bands", "--tier", "smoke", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mig" in printed and "bands on toy" in printed
    record = json.loads(out.read_text())
    rows = lb.read_table(board / "smoke.csv").rows
    assert rows[0]["record_id"] == record["record_id"] and float(rows[0]["mig.score"]) == record["metrics"]["mig.score"]
    no_name = ["evaluate", "--model", str(model), "--dataset", "toy", "--leaderboard", str(board), "--quiet"]
    assert main(no_name) == 2
    assert "--name" in capsys.readouterr().err


def test_regression_check_passes_on_identical_rerun_and_flags_drift(tmp_path, toy, cache, monkeypatch):
    import disentbench.data
    from disentbench.fileio import atomic_write_text

    def fake_train(model, dataset, seed, tier, run_dir, **kw):  # a deterministic "training": seeded init
        return random_checkpoint(run_dir / "model.pt", seed=seed)

    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: toy, raising=False)
    monkeypatch.setattr(ev, "train_run", fake_train)
    monkeypatch.setitem(tiers.TIER_PROTOCOLS, "smoke", {"metrics": "mig,modularity", "preset": "fast", "n_points": None})
    monkeypatch.setitem(tiers.CI_SUBSETS, "ci", (("random", "toy", 0),))
    import disentbench.leaderboard.regression as regression

    monkeypatch.setattr(regression, "blas_kernels", lambda: [tiers.TABLE_BLAS_KERNEL])
    board = tmp_path / f"v{lb.LEADERBOARD_VERSION}"
    ckpt = fake_train("random", "toy", 0, "smoke", tmp_path / "committed")
    lb.add_records([ev.evaluate_run(ckpt, "random", "toy", 0, "smoke")], board)

    report = lb.regression_check(board, tier="smoke", subset="ci", work_dir=tmp_path / "ci")
    assert report.ok and report.max_abs_diff == 0.0, report.summary()

    table = lb.read_table(board / "smoke.csv")
    row = dict(table.rows[0], **{"mig.score": str(float(table.rows[0]["mig.score"]) + 0.05)})
    atomic_write_text(board / "smoke.csv", lb.format_table(table.metric_columns, [row]))
    report = lb.regression_check(board, tier="smoke", subset="ci", work_dir=tmp_path / "ci2")
    assert not report.ok and "mig.score" in report.summary() and "FAIL" in report.summary()

    # another OpenBLAS kernel: without this platform's reference it fails up front, naming the command that makes it
    monkeypatch.setattr(regression, "blas_kernels", lambda: ["Haswell"])
    report = lb.regression_check(board, tier="smoke", subset="ci", work_dir=tmp_path / "ci3")
    assert not report.ok and "--write-baseline" in report.summary() and regression.platform_key() in report.summary()
    assert not (tmp_path / "ci3").exists()  # nothing was retrained
    report = lb.regression_check(board, tier="smoke", subset="ci", work_dir=tmp_path / "ci4", write_baseline=True)
    baseline = regression.baseline_path(board, "smoke", "random", "toy", 0)
    assert report.ok and baseline.is_file() and f"Haswell-{tiers.torch_cpu_capability()}" in str(baseline)
    report = lb.regression_check(board, tier="smoke", subset="ci", work_dir=tmp_path / "ci5")
    assert report.ok and report.max_abs_diff == 0.0 and str(baseline) in report.summary(), report.summary()
    record = json.loads(baseline.read_text())
    record["metrics"]["mig.score"] += 0.05
    baseline.write_text(json.dumps(record))
    report = lb.regression_check(board, tier="smoke", subset="ci", work_dir=tmp_path / "ci6")
    assert not report.ok and "mig.score" in report.summary()
    # under the table's own kernel the table is the reference: no baseline is written
    monkeypatch.setattr(regression, "blas_kernels", lambda: [tiers.TABLE_BLAS_KERNEL])
    assert not lb.regression_check(board, tier="smoke", subset="ci", write_baseline=True).ok


def test_populate_adds_missing_rows_and_resumes(tmp_path, toy, cache, monkeypatch, capsys):
    import disentbench.data

    trained = []

    def fake_train(model, dataset, seed, tier, run_dir, **kw):
        trained.append((model, seed))
        return random_checkpoint(run_dir / "model.pt", seed=seed)

    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: toy, raising=False)
    monkeypatch.setattr(ev, "train_run", fake_train)
    monkeypatch.setitem(tiers.TIER_PROTOCOLS, "smoke", {"metrics": "mig", "preset": "fast", "n_points": None})
    board = tmp_path / f"v{lb.LEADERBOARD_VERSION}"
    argv = ["leaderboard", "populate", "--dir", str(board), "--models", "random,ae", "--datasets", "toy",
            "--seeds", "0,1", "--work-dir", str(tmp_path / "runs")]
    assert main(argv + ["--limit", "3"]) == 0
    assert trained == [("random", 0), ("ae", 0), ("random", 1)]
    assert main(argv) == 0  # resumes: only the missing run
    assert trained[3:] == [("ae", 1)]
    rows = lb.check(board)[0].rows
    assert sorted((r["model"], r["seed"]) for r in rows) == [("ae", "0"), ("ae", "1"), ("random", "0"), ("random", "1")]
    assert "1 run(s) to do, 3 already" in capsys.readouterr().out


def test_cli_evaluates_ground_truth_with_the_default_tasks(tmp_path, toy, cache, monkeypatch, capsys):
    import disentbench.data

    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: toy, raising=False)
    monkeypatch.chdir(tmp_path)  # no file named "ground-truth" or "default" here
    out = tmp_path / "rec.json"
    argv = ["evaluate", "--model", "ground-truth", "--dataset", "toy", "--metrics", "mig", "--n-points", "0",
            "--tasks", "default", "--task-epochs", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert record["model"] == "ground-truth" and record["tasks"]["default"] and record["tasks"]["epochs"] == 1
    assert "multitask.rmse" in capsys.readouterr().out


def test_a_tier_s_protocol_is_the_default_and_explicit_settings_win():
    smoke = tiers.evaluation_settings("smoke")
    assert (smoke["preset"], smoke["tasks"], smoke["task_epochs"]) == ("fast", tiers.DEFAULT_TASKS, 10)
    assert tiers.evaluation_settings("smoke", preset="reference", task_epochs=None)["preset"] == "reference"
    assert tiers.evaluation_settings("smoke", task_epochs=None)["task_epochs"] == 10  # None = not given
    assert tiers.evaluation_settings(None) == tiers.CUSTOM_SETTINGS == tiers.evaluation_settings("my-own-tier")
    assert tiers.evaluation_settings(None)["tasks"] is None  # no multi-task protocol unless asked


def test_populate_scores_ground_truth_without_training_and_reevaluates_it(tmp_path, toy, cache, monkeypatch, capsys):
    import disentbench.data

    monkeypatch.setattr(disentbench.data, "get_dataset", lambda name: toy, raising=False)
    monkeypatch.setitem(tiers.TIER_PROTOCOLS, "smoke", {"metrics": "mig", "preset": "fast", "n_points": None})
    board = tmp_path / f"v{lb.LEADERBOARD_VERSION}"
    argv = ["leaderboard", "populate", "--dir", str(board), "--models", "ground-truth", "--datasets", "toy",
            "--seeds", "0", "--work-dir", str(tmp_path / "runs")]
    assert main(argv) == 0 and main(argv) == 0
    assert "0 run(s) to do, 1 already" in capsys.readouterr().out
    assert main(argv + ["--reevaluate"]) == 0
    assert "1 run(s) to do, 1 already" in capsys.readouterr().out
    rows = lb.check(board)[0].rows
    assert len(rows) == 1 and float(rows[0]["mig.score"]) == pytest.approx(1.0)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("model.pt"))


def test_collapsed_code_dimensions_are_reported_whatever_their_scale(tmp_path, toy, cache):
    rng = np.random.default_rng(0)
    n = toy.factor_space.n_points
    healthy = toy.factor_space.normalised(toy.factor_space.all_classes()) * 1e-6  # tiny scale, real signal
    collapsed = 0.7 + 1e-7 * rng.normal(size=(n, 1))  # a saturated unit: constant up to noise
    assert ev.collapsed_dimensions(np.hstack([healthy, collapsed])) == [3]
    assert ev.collapsed_dimensions(np.zeros((n, 2))) == [0, 1]
    path = tmp_path / "codes.npz"
    np.savez(path, codes=np.hstack([healthy, collapsed]).astype(np.float32), indices=np.arange(n))
    record = run(path, toy)
    assert len(record["warnings"]) == 1 and "[3]" in record["warnings"][0] and record["collapsed_dimensions"] == [3]
    assert "warning: 1 of 4 code dimensions" in ev.format_record(record)
    truth = run(ev.GROUND_TRUTH, toy)
    assert truth["warnings"] == [] and truth["collapsed_dimensions"] == []


def test_bit_identical_checkpoints_share_record_id_and_code_cache(tmp_path, toy, cache):
    """Issue 17.6: runs with equal weights write different checkpoint bytes (their training state and run spec, e.g.
    --threads, sit in the file); the record id and the code cache are keyed on the model's content instead."""
    from disentbench.checkpoint import save_model
    from disentbench.models import load_model

    model, _ = load_model(random_checkpoint(tmp_path / "x.pt", seed=3))
    a = save_model(tmp_path / "a.pt", model, extra={"run": {"threads": 1}})
    b = save_model(tmp_path / "b.pt", model, extra={"run": {"threads": 2}})
    assert a.read_bytes() != b.read_bytes()
    first, second = run(a, toy), run(b, toy)
    assert first["record_id"] == second["record_id"] and second["codes_from_cache"]
    other = run(random_checkpoint(tmp_path / "c.pt", seed=4), toy)
    assert other["record_id"] != first["record_id"] and not other["codes_from_cache"]


def test_an_encoder_that_raises_is_a_one_line_error(tmp_path, toy, cache):
    """Issue 17.8: a TorchScript encoder raising inside its forward ends in one line naming the error, no traceback."""
    with pytest.raises(ev.EvaluationError, match="the encoder raised .*this encoder is broken") as info:
        run(script(Raises(), tmp_path / "raises.pt"), toy)
    assert "\n" not in str(info.value)


def test_train_run_trains_a_staged_models_upstream_first(tmp_path, monkeypatch):
    """kf trains on a kf-teacher run: the tier runner trains (or reuses) kf-teacher_<dataset>_<seed> and passes it."""
    import subprocess

    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "model.pt").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    final = ev.train_run("kf", "toy", 1, "smoke", tmp_path / "kf_toy_1")
    assert final == tmp_path / "kf_toy_1" / "model.pt"
    assert [c[c.index("train") + 1] for c in calls] == ["kf-teacher", "kf"]
    assert calls[1][calls[1].index("--from") + 1] == str(tmp_path / "kf-teacher_toy_1")
    ev.train_run("kf", "toy", 2, "smoke", tmp_path / "other")
    assert calls[-1][calls[-1].index("--from") + 1] == str(tmp_path / "other.kf-teacher")
