"""``disentbench score``: input formats, output table and JSON, errors, start-up."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys

import numpy as np
import pytest

from disentbench import __version__
from disentbench.cli import main
from disentbench.examples import controlled_family
from disentbench.factors import FactorSpace
from disentbench.metrics import METRIC_DEFINITIONS_VERSION


@pytest.fixture
def table_file(tmp_path):
    classes, codes = controlled_family("noise", 0.2, n_samples=600)
    path = tmp_path / "codes.npz"
    np.savez(path, codes=codes, factors=classes, factor_names=np.array(["a", "b", "c"]),
             discrete=np.array([True, True, True]))
    return path


def test_score_prints_a_table_and_writes_json(table_file, tmp_path, capsys):
    out = tmp_path / "sub" / "scores.json"
    assert main(["score", str(table_file), "--metrics", "mig,spearman", "--seed", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mig.score" in printed and "spearman.n_factors_retrieved" in printed and "seconds" in printed
    payload = json.loads(out.read_text())
    assert payload["disentbench_version"] == __version__
    assert payload["metric_definitions_version"] == METRIC_DEFINITIONS_VERSION
    assert payload["preset"] == "reference" and payload["seed"] == 3
    assert payload["input"]["factor_names"] == ["a", "b", "c"] and payload["input"]["n_samples"] == 600
    assert set(payload["scores"]) >= {"mig.score", "spearman.mean"}
    assert payload["definition_versions"] == {"mig": "1", "spearman": "1"}
    settings = payload["results"]["mig"]["settings"]
    assert settings["random_state"] == 3 and settings["n_bins"] == 20 and settings["preset"] == "reference"
    assert [p.name for p in out.parent.iterdir()] == ["scores.json"]  # no temp file left behind


def test_score_json_matches_the_library(table_file, tmp_path):
    from disentbench.metrics import compute_metrics

    out = tmp_path / "s.json"
    main(["score", str(table_file), "--metrics", "mig,modularity", "--json", str(out)])
    with np.load(table_file) as data:
        expected = compute_metrics(data["factors"], data["codes"], "mig,modularity")
    scores = json.loads(out.read_text())["scores"]
    assert scores["mig.score"] == expected["mig"]["mig.score"]
    assert scores["modularity.score"] == expected["modularity"]["modularity.score"]


def test_score_builds_factors_from_the_full_grid(tmp_path, capsys):
    space = FactorSpace(("a", "b"), (4, 5))
    grid = space.all_classes().astype(float)
    path = tmp_path / "grid.npz"
    np.savez(path, codes=grid[:, ::-1], factor_sizes=np.array([4, 5]), factor_names=np.array(["a", "b"]))
    out = tmp_path / "grid.json"
    assert main(["score", str(path), "--metrics", "mig", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["scores"]["mig.score"] == pytest.approx(1.0)
    bad = tmp_path / "bad.npz"
    np.savez(bad, codes=grid[:-1], factor_sizes=np.array([4, 5]))
    assert main(["score", str(bad), "--metrics", "mig"]) == 2
    assert "has 20 points" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"factors": np.zeros((10, 2))}, "missing array 'codes'"),
        ({"codes": np.zeros((10, 2))}, "needs a 'factors' array"),
        ({"codes": np.full((10, 2), np.nan), "factors": np.arange(20.0).reshape(10, 2)}, "NaN"),
        ({"codes": np.zeros(10), "factors": np.arange(20.0).reshape(10, 2)}, "1-D"),
        ({"codes": np.zeros((9, 2)), "factors": np.arange(20.0).reshape(10, 2)}, "same number of rows"),
        ({"codes": np.zeros((10, 2)), "factors": np.zeros((10, 2)), "factor_names": np.array(["x"])},
         "factor_names has 1 names"),
        ({"codes": np.zeros((10, 2)), "factors": np.zeros((10, 2)), "discrete": np.array([True])}, "'discrete' has 1"),
    ],
)
def test_score_bad_files_are_clear_errors(tmp_path, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert main(["score", str(path), "--metrics", "mig"]) == 2
    assert message in capsys.readouterr().err


def test_score_user_errors(table_file, tmp_path, capsys):
    assert main(["score", str(tmp_path / "absent.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["score", str(table_file), "--metrics", "mig,nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
    assert main(["score", str(table_file), "--metrics", "explicitness"]) == 2
    assert "too few rows: the input has 600, but explicitness needs 15,000" in capsys.readouterr().err
    assert main(["score", str(table_file), "--preset", "warp"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    not_npz = tmp_path / "x.npz"
    not_npz.write_text("hello")
    assert main(["score", str(not_npz)]) == 2
    assert f"{not_npz}: not an npz archive" in capsys.readouterr().err
    assert main(["score"]) == 2


def test_score_reports_constant_codes_once_as_notes(tmp_path, capsys):
    classes, codes = controlled_family("noise", 0.2, n_samples=600)
    path = tmp_path / "collapsed.npz"
    np.savez(path, codes=np.column_stack([codes, np.zeros(600)]), factors=classes)
    assert main(["score", str(path), "--metrics", "mig,modularity"]) == 0
    captured = capsys.readouterr()
    assert "notes:" in captured.out and "[mig, modularity]" in captured.out
    assert captured.out.count("constant") == 1 and "MetricWarning" not in captured.err


def test_score_list(capsys):
    assert main(["score", "--list"]) == 0
    printed = capsys.readouterr().out
    for name in ("mig", "mig_sup", "jemmig", "dcimig", "infomec", "irs", "spearman", "mcc", "reference"):
        assert name in printed
    assert "defaults: n_samples=10000, n_bins=20, discretizer='histogram'" in printed


def test_score_does_not_import_torch_and_starts_fast(table_file):
    code = (
        "import sys, time; t = time.perf_counter(); from disentbench.cli import main; "
        f"rc = main(['score', {str(table_file)!r}, '--metrics', 'mig,mig_sup,jemmig,dcimig,modularity,irs,"
        "spearman,mcc,infomec']); print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "NO_TORCH 0"
    import time

    start = time.perf_counter()
    listed = subprocess.run([sys.executable, "-X", "importtime", "-m", "disentbench", "score", "--list"],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0
    assert time.perf_counter() - start < 10.0  # ~0.7 s measured; loose for loaded CI machines
    imported = {line.split("|")[-1].strip() for line in listed.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "disentbench.metrics.mig" in imported


def test_score_json_to_a_directory_is_a_one_line_error_before_scoring(table_file, tmp_path, capsys):
    """Issue 17.8: ``--json DIR`` ended in a traceback (after the metrics ran)."""
    assert main(["score", str(table_file), "--metrics", "mig", "--json", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "--json" in captured.err and str(tmp_path) in captured.err and "directory" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "mig.score" not in captured.out


def _float_table(tmp_path):
    rng = np.random.default_rng(0)
    factors = np.column_stack([rng.integers(0, 4, 2000), rng.uniform(size=2000)])
    codes = factors + 0.01 * rng.normal(size=factors.shape)
    path = tmp_path / "floats.npz"
    np.savez(path, codes=codes, factors=factors, factor_names=np.array(["shape", "angle"]))
    return path


def test_score_float_factors_are_refused_with_the_option_to_pass(tmp_path, capsys):
    """Issue 17.2: float factors hung (each float a class) or gave MIG 0.04 silently."""
    path = _float_table(tmp_path)
    assert main(["score", str(path), "--metrics", "mig"]) == 2
    err = capsys.readouterr().err
    assert "angle" in err and "--continuous-factors angle" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "s.json"
    assert main(["score", str(path), "--metrics", "mig,dci", "--continuous-factors", "angle",
                 "--n-train", "1000", "--n-test", "500", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["input"]["discrete"] == [True, False] and payload["scores"]["mig.score"] > 0.5
    assert payload["results"]["dci"]["settings"]["discrete"] == [True, False]
    assert main(["score", str(path), "--metrics", "factor_vae", "--continuous-factors", "1"]) == 2
    assert "factor_vae groups rows by factor value" in capsys.readouterr().err
    assert main(["score", str(path), "--continuous-factors", "tilt"]) == 2
    assert "no factor 'tilt'" in capsys.readouterr().err


def test_score_checks_every_row_requirement_before_computing(table_file, capsys, monkeypatch):
    """Issue 17.3: the default suite ran for minutes, then dci said 15,000 rows were needed."""
    from disentbench.metrics import registry

    calls = []
    real = registry.get_metric

    def spy(name):
        info = real(name)
        func = functools.wraps(info.func)(lambda *a, **k: calls.append(name) or info.func(*a, **k))
        return dataclasses.replace(info, func=func)

    monkeypatch.setattr(registry, "get_metric", spy)
    assert main(["score", str(table_file)]) == 2
    err = capsys.readouterr().err
    assert calls == [] and "the input has 600" in err and "--n-train/--n-test" in err
    assert all(f"{name} needs 15,000" in err for name in ("dci", "sap"))
    assert main(["score", str(table_file), "--metrics", "sap,mig", "--n-train", "400", "--n-test", "200"]) == 0
    assert calls == ["sap", "mig"]
    assert main(["score", str(table_file), "--n-train", "0"]) == 2
    assert "--n-train must be a positive" in capsys.readouterr().err


def test_score_warns_on_wide_codes_with_a_memory_estimate(tmp_path, capsys, monkeypatch):
    """Issue 17.3: 2,000-dimensional codes took 4.5 GB without a word; the estimate is printed before scoring."""
    from disentbench.metrics import _validation

    rng = np.random.default_rng(0)
    factors, codes = rng.integers(0, 3, (50, 2)), rng.normal(size=(50, 2000))
    notes = _validation.preflight(factors, codes, None, {"factor_vae": {"batch_size": 64}, "mig": {"n_samples": 10}})
    assert notes == ["wide input (50 rows x 2,000 codes): about 3.9 GiB of memory at peak (factor_vae); "
                     "select fewer metrics or fewer codes if that does not fit"]
    monkeypatch.setattr(_validation, "MEMORY_WARNING_BYTES", 1 << 20)  # score a small input, keep the note
    path = tmp_path / "wide.npz"
    np.savez(path, codes=codes, factors=factors)
    assert main(["score", str(path), "--metrics", "spearman"]) == 0
    captured = capsys.readouterr()
    assert "disentbench score: note: wide input (50 rows x 2,000 codes)" in captured.err
    assert "spearman.mean" in captured.out
