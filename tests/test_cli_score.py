"""``disentbench score``: input formats, output table and JSON, errors, start-up."""

from __future__ import annotations

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
    assert "too few samples" in capsys.readouterr().err
    assert main(["score", str(table_file), "--preset", "warp"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    not_npz = tmp_path / "x.npz"
    not_npz.write_text("hello")
    assert main(["score", str(not_npz)]) == 2
    assert "npz" in capsys.readouterr().err
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
