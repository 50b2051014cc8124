"""Reference trainers: every model learns, determinism, resume equivalence, NaN stop, bad input, CLI + export."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentbench.checkpoint import load_checkpoint  # noqa: E402
from disentbench.data.base import GroundTruthDataset  # noqa: E402
from disentbench.factors import FactorSpace  # noqa: E402
from disentbench.training import TrainingDiverged, load_reference, resolve_spec, train  # noqa: E402
from disentbench.training.loop import setup_run  # noqa: E402

TINY = {"subset": 0, "epochs": 2, "batch_size": 8, "checkpoint_every_steps": 3}


class TinySquares(GroundTruthDataset):
    """A 4×4×3 grid: a bright square at (x, y) of size s on a dark background."""

    name = "tiny-squares"
    version = "test"

    def __init__(self, channels: int = 1, sizes=(4, 4, 3)):
        self.channels = channels
        self._space = FactorSpace(("x", "y", "size"), sizes)

    @property
    def factor_space(self) -> FactorSpace:
        return self._space

    def _read(self, indices):
        classes = self._space.index_to_classes(indices)
        out = np.zeros((len(indices), 64, 64, self.channels), np.uint8)
        for i, (x, y, s) in enumerate(classes):
            w = 6 + 4 * s
            out[i, 8 + 10 * y: 8 + 10 * y + w, 8 + 10 * x: 8 + 10 * x + w, :] = 255
        return out


def spec_for(model, seed=0, **budget):
    return resolve_spec(model, tier="smoke", seed=seed, dataset="tiny-squares", threads=1,
                        overrides={**TINY, **budget}, log_every_steps=1)


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    """A finished multi-head run whose encoder the frozen protocols use."""
    out = tmp_path_factory.mktemp("runs") / "mh"
    train(spec_for("multi-head", epochs=1), out, dataset=TinySquares(), progress=False)
    return out


TRAINED = ["single-task", "multi-head", "one-head", "ae", "vae", "beta-vae", "factor-vae",
           "heads-on-frozen", "decoder-on-frozen"]


@pytest.mark.parametrize("model", TRAINED)
def test_a_few_steps_lower_the_loss(model, encoder_run):
    """Repeated steps on one fixed batch lower that batch's loss (the VAE part for FactorVAE)."""
    ref = load_reference(model)
    ref["optimizer"]["lr"] = 1e-3
    spec = resolve_spec(model, tier="smoke", seed=0, dataset="tiny-squares", threads=1, reference=ref, overrides=TINY)
    encoder = encoder_run if model.endswith("-frozen") else None
    run = setup_run(spec, dataset=TinySquares(), encoder_path=encoder)
    positions = run.data.train[:8]
    key = {"factor-vae": "recon"}.get(model, "loss")
    losses = [float(run.objective.step(positions)[key]) for _ in range(6)]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses
    if model.endswith("-frozen"):  # the frozen encoder did not move
        src = load_checkpoint(encoder_run / "model.pt")["state_dict"]
        for k, v in run.model.encoder.state_dict().items():
            assert torch.equal(v, src["encoder." + k])


def test_random_model_is_the_seeded_default_init(tmp_path):
    summary = train(spec_for("random", seed=3), tmp_path / "r", dataset=TinySquares(), progress=False)
    assert summary["steps"] == 0
    ckpt = load_checkpoint(tmp_path / "r" / "model.pt")
    assert ckpt["config"]["init"] == "default" and ckpt["representation"] == "encoder"
    from disentbench.models import build_model

    torch.manual_seed(3)
    fresh = build_model(ckpt["config"]).state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in ckpt["state_dict"].items())


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


def _weights(run_dir):
    return load_checkpoint(run_dir / "model.pt")["state_dict"]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_and_losses(tmp_path):
    for name in ("a", "b"):
        train(spec_for("vae", epochs=1), tmp_path / name, dataset=TinySquares(), progress=False)
    train(spec_for("vae", seed=1, epochs=1), tmp_path / "c", dataset=TinySquares(), progress=False)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b") and len(_losses(tmp_path / "a")) > 3
    assert _same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


@pytest.mark.parametrize("model,stop_at", [("factor-vae", 8), ("multi-head", 7)])
def test_resume_reaches_the_uninterrupted_result(tmp_path, model, stop_at):
    train(spec_for(model), tmp_path / "full", dataset=TinySquares(), progress=False)

    def interrupt(step, _model):
        if step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec_for(model), tmp_path / "cut", dataset=TinySquares(), progress=False, on_step=interrupt)
    assert not (tmp_path / "cut" / "model.pt").exists()
    saved = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["extra"]["training"]["step"]
    assert 0 < saved < stop_at  # the interruption lost work that the resumed run must redo
    train(spec_for(model), tmp_path / "cut", dataset=TinySquares(), progress=False, resume=True)
    assert _same_weights(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    assert _losses(tmp_path / "full") == _losses(tmp_path / "cut")
    full = load_checkpoint(tmp_path / "full" / "model.pt")["extra"]["training"]["optimizers"]
    cut = load_checkpoint(tmp_path / "cut" / "model.pt")["extra"]["training"]["optimizers"]
    assert full.keys() == cut.keys()


def test_resume_refuses_other_settings_and_existing_runs(tmp_path):
    train(spec_for("multi-head", epochs=1), tmp_path / "r", dataset=TinySquares(), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(spec_for("multi-head", epochs=1), tmp_path / "r", dataset=TinySquares(), progress=False)
    with pytest.raises(ValueError, match="different settings.*seed"):
        train(spec_for("multi-head", seed=5, epochs=1), tmp_path / "r", dataset=TinySquares(), resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(spec_for("multi-head"), tmp_path / "empty", dataset=TinySquares(), resume=True)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(step, model):
        if step == 3:  # right after the step-3 checkpoint
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"step 4 .*task loss is nan.*step 3"):
        train(spec_for("multi-head"), tmp_path / "r", dataset=TinySquares(), progress=False, on_step=poison)
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert ckpt["extra"]["training"]["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "r" / "model.pt").exists()


def test_tasks_file_for_another_factor_space_is_refused(tmp_path):
    from disentbench.tasks import TaskSet

    other = TaskSet.generate(FactorSpace(("a", "b"), (5, 5)), 3, 0)
    other.save(tmp_path / "other.h5")
    with pytest.raises(ValueError, match="different factor space"):
        train(spec_for("multi-head"), tmp_path / "r", dataset=TinySquares(), tasks_path=tmp_path / "other.h5")
    with pytest.raises(ValueError, match="--tasks applies to task models"):
        train(spec_for("ae"), tmp_path / "ae", dataset=TinySquares(), tasks_path=tmp_path / "other.h5")
    mine = TaskSet.generate(TinySquares().factor_space, 4, 1)
    mine.save(tmp_path / "mine.h5")
    summary = train(spec_for("one-head", epochs=1), tmp_path / "ok", dataset=TinySquares(),
                    tasks_path=tmp_path / "mine.h5", progress=False)
    assert len(summary["metrics"]["test_mse_per_task"]) == 4


def test_frozen_protocol_needs_a_matching_encoder(tmp_path, encoder_run):
    with pytest.raises(ValueError, match="--encoder"):
        train(spec_for("heads-on-frozen"), tmp_path / "a", dataset=TinySquares())
    with pytest.raises(ValueError, match="3-channel|1-channel"):
        train(spec_for("decoder-on-frozen"), tmp_path / "b", dataset=TinySquares(channels=3), encoder_path=encoder_run)
    with pytest.raises(ValueError, match="--encoder applies"):
        train(spec_for("multi-head"), tmp_path / "c", dataset=TinySquares(), encoder_path=encoder_run)


def test_every_reference_config_resolves_for_both_tiers():
    from disentbench.models import list_models

    for model in list_models():
        for tier in ("smoke", "paper"):
            spec = resolve_spec(model, tier=tier, seed=0, dataset="dsprites-procedural")
            assert spec["source"].startswith("Seed 004") and spec["epochs"] >= 0 and spec["batch_size"] >= 2
    with pytest.raises(ValueError, match="unknown model"):
        load_reference("resnet")
    with pytest.raises(ValueError, match="no tier"):
        resolve_spec("ae", tier="huge", seed=0, dataset="x")


def test_cli_train_export_and_errors(tmp_path, capsys):
    from disentbench.cli import main
    from disentbench.models import load_encoder

    config = tmp_path / "tiny.toml"
    text = (load_reference.__globals__["reference_dir"]() / "multi-head.toml").read_text()
    text = text.replace("subset = 4000", "subset = 48").replace("epochs = 4", "epochs = 1").replace(
        "batch_size = 64", "batch_size = 16")
    config.write_text(text)
    run = tmp_path / "run"
    args = ["train", "multi-head", "--dataset", "dsprites-procedural", "--seed", "1", "--tier", "smoke",
            "--config", str(config), "--out", str(run), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["dataset"] == "dsprites-procedural"
    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err
    assert main(["export", str(run), "--torchscript", str(tmp_path / "enc.pt")]) == 0
    eager, info = load_encoder(run)
    scripted, _ = load_encoder(tmp_path / "enc.pt")
    x = torch.rand(2, 1, 64, 64)
    assert info["model_name"] == "multi-head" and torch.allclose(eager(x), scripted(x), atol=1e-6)
    assert main(["train", "resnet", "--dataset", "dsprites-procedural", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--torchscript", str(tmp_path / "e.pt")]) == 2


def test_full_disk_mid_training_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    from disentbench.checkpoint import CheckpointWriteError

    real_save, calls = torch.save, []

    def flaky_save(obj, fh, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint (step 5, the end of epoch 1) hits a full disk
            fh.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, fh, *a, **k)

    monkeypatch.setattr(torch, "save", flaky_save)
    with pytest.raises(CheckpointWriteError, match="No space left"):
        train(spec_for("multi-head"), tmp_path / "r", dataset=TinySquares(), progress=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["extra"]["training"]["step"] == 3
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["checkpoint.pt", "config.json", "log.jsonl"]
    train(spec_for("multi-head"), tmp_path / "r", dataset=TinySquares(), progress=False, resume=True)
    train(spec_for("multi-head"), tmp_path / "full", dataset=TinySquares(), progress=False)
    assert _same_weights(_weights(tmp_path / "r"), _weights(tmp_path / "full"))
