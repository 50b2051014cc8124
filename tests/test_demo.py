"""The demo's wiring (dataset -> tasks -> training -> evaluation -> comparison), with training replaced by a
random checkpoint and a small evaluation protocol so it runs in seconds; the real run is `make demo`."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from disentbench import evaluation as ev  # noqa: E402
from disentbench import leaderboard as lb  # noqa: E402
from disentbench import tiers  # noqa: E402
from disentbench.cli import main  # noqa: E402


def test_demo_end_to_end_wiring(tmp_path, monkeypatch, capsys):
    from disentbench.checkpoint import save_model
    from disentbench.models import build_model
    from disentbench.models.base import ModelContext

    calls = []

    def fake_train(model, dataset, seed, tier, run_dir, *, quiet=True, tasks=None):
        calls.append((model, dataset, seed, tier, tasks.exists()))
        torch.manual_seed(seed)
        config = {"init": "default", "latent_dim": 4, "activation": "relu"}
        return save_model(run_dir / "model.pt", build_model("random", config, ModelContext(channels=1)))

    monkeypatch.setattr(ev, "train_run", fake_train)
    monkeypatch.setitem(tiers.TIER_PROTOCOLS, "smoke", {"metrics": "mig,modularity", "preset": "fast", "n_points": 400})
    monkeypatch.setenv("DISENTBENCH_CACHE", str(tmp_path / "cache"))
    board = tmp_path / "lb" / f"v{lb.LEADERBOARD_VERSION}"
    committed = {
        "record_id": "c0ffee" * 3, "model": "one-head", "model_config_hash": "ab" * 8,
        "dataset": "dsprites-procedural", "dataset_version": "1", "tier": "smoke", "seed": 0, "preset": "fast",
        "metrics": {"mig.score": 0.123456, "modularity.score": 0.05}, "disentbench_version": "0.1.0",
        "metric_definitions_version": "1", "leaderboard_version": lb.LEADERBOARD_VERSION, "commit": "unknown",
        "created": "2026-11-22T07:00:00Z",
    }
    lb.add_records([committed], board)

    assert main(["demo", "--work-dir", str(tmp_path / "demo"), "--leaderboard", str(board)]) == 0
    out = capsys.readouterr().out
    assert calls == [("multi-head", "dsprites-procedural", 0, "smoke", True)]
    for n in range(1, 6):
        assert f"[{n}/5" in out
    assert "this run" in out and "one-head s0" in out and "0.1235" in out
    assert (tmp_path / "demo" / "seed0" / "record.json").exists()
    assert (tmp_path / "demo" / "seed0" / "report" / "traversal_nearest_fixed.png").exists()
