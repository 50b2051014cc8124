"""The Python API mirrors the CLI: same results from ``disentbench.<command>`` and ``disentbench <command>``;
``import disentbench`` stays torch-free; the package ships its type marker and record schema."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import numpy as np

import disentbench
from disentbench.cli import main


def test_import_is_torch_free_and_lazy():
    code = ("import sys, disentbench; f = disentbench.score; "
            "print('torch' in sys.modules, 'sklearn' in sys.modules, callable(f))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False", "True"], done.stderr


def test_package_ships_py_typed_and_the_record_schema():
    root = resources.files("disentbench")
    assert root.joinpath("py.typed").is_file()
    schema = json.loads(root.joinpath("evaluation/record.schema.json").read_text())
    assert schema["properties"]["record_format"]["const"] == "disentbench-score-record"


def test_score_matches_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(600, 3))
    codes = factors + rng.normal(0, 0.3, size=factors.shape)
    np.savez(tmp_path / "t.npz", codes=codes, factors=factors)
    results = disentbench.score(factors, codes, metrics="mig,modularity", seed=0)
    assert main(["score", str(tmp_path / "t.npz"), "--metrics", "mig,modularity", "--json", str(tmp_path / "s.json")]) == 0
    cli = json.loads((tmp_path / "s.json").read_text())["scores"]
    assert cli == {k: v for r in results.values() for k, v in r.scores.items()}


def test_generate_tasks_matches_the_cli(tmp_path):
    tasks = disentbench.generate_tasks("dsprites-procedural", n_tasks=2, seed=3, out=tmp_path / "api.h5")
    assert main(["generate-tasks", "--dataset", "dsprites-procedural", "--n-tasks", "2", "--seed", "3",
                 "--out", str(tmp_path / "cli.h5"), "--no-progress"]) == 0
    assert tasks.n_tasks == 2
    assert (tmp_path / "api.h5").read_bytes() == (tmp_path / "cli.h5").read_bytes()


def test_evaluate_matches_the_cli_and_returns_a_valid_record(tmp_path):
    from disentbench.evaluation import read_record

    args = dict(metrics="mig", n_points=400, use_cache=False)
    record = disentbench.evaluate("ground-truth", "dsprites-procedural", **args, out=tmp_path / "api.json")
    assert main(["evaluate", "--model", "ground-truth", "--dataset", "dsprites-procedural", "--metrics", "mig",
                 "--n-points", "400", "--no-cache", "--quiet", "--out", str(tmp_path / "cli.json")]) == 0
    cli = read_record(tmp_path / "cli.json")
    assert record["metrics"] == cli["metrics"] and record["record_id"] == cli["record_id"]
    assert read_record(tmp_path / "api.json")["metrics"] == record["metrics"]
    assert isinstance(record["blas_kernels"], list)
