"""The one training loop: every registered model learns and resumes bit-identically, determinism, NaN stop, strict
configs, bad input, interrupted and finished runs, CLI + export; a model defined here trains without touching the loop."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentbench.checkpoint import load_checkpoint  # noqa: E402
from disentbench.factors import FactorSpace  # noqa: E402
from disentbench.fileio import AtomicWriteError  # noqa: E402
from disentbench.models import build_model, list_models, register_model  # noqa: E402
from disentbench.models.config import ConfigError  # noqa: E402
from model_checks import TinySquares  # noqa: E402

from disentbench.training import TrainingDiverged, load_reference, reference_dir, resolve_spec, setup_run, train  # noqa: E402,E501

TINY = {"subset": 0, "epochs": 2, "batch_size": 8, "checkpoint_every_steps": 3}
TRAINED = [m.name for m in list_models() if m.cls.trainable]


def spec_for(model, seed=0, **budget):
    return resolve_spec(model, tier="smoke", seed=seed, dataset="tiny-squares", threads=1,
                        overrides={**TINY, **budget}, log_every_steps=1)


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    """A finished multi-head run whose encoder the frozen protocols use."""
    out = tmp_path_factory.mktemp("runs") / "mh"
    train(spec_for("multi-head", epochs=1), out, dataset=TinySquares(), progress=False)
    return out


@pytest.fixture(scope="module")
def upstream_runs(tmp_path_factory, encoder_run):
    """Finished runs by registry name, trained on demand: the upstream runs of the staged models."""
    runs = {"multi-head": encoder_run}

    def get(name):
        if name not in runs:
            runs[name] = tmp_path_factory.mktemp("runs") / name
            train(spec_for(name, epochs=1), runs[name], dataset=TinySquares(), progress=False,
                  upstream_path=upstream_for(name, get))
        return runs[name]

    return get


def upstream_for(model, runs):
    """The ``--from`` run a staged model trains on (its first accepted upstream, else the multi-head run)."""
    from disentbench.models import get_model

    info = get_model(model)
    if "upstream" not in info.needs:
        return None
    return runs(info.upstream[0] if info.upstream else "multi-head")


@pytest.mark.parametrize("model", TRAINED)
def test_a_few_steps_lower_the_loss(model, upstream_runs):
    """Repeated steps on one fixed batch lower that batch's loss (the VAE part for FactorVAE); a frozen upstream
    stays bit-identical."""
    # fa-backbone: RAdam's first steps are un-adapted momentum steps and its heads read unit-norm features, so six
    # steps at 1e-3 barely move it (3.811 -> 3.839, measured); at 1e-2 they do
    lr = {"fa-backbone": 1e-2}.get(model, 1e-3)
    spec = resolve_spec(model, tier="smoke", seed=0, dataset="tiny-squares", threads=1, overrides={**TINY, "lr": lr})
    upstream = upstream_for(model, upstream_runs)
    run = setup_run(spec, dataset=TinySquares(), upstream_path=upstream)
    batch = run.data.batch(run.data.train[:8], run.model.needs, noise=run.noise)
    key = {"factor-vae": "recon", "annealed-vae": "recon"}.get(model, "loss")
    losses = [float(run.model.train_step(batch)[key]) for _ in range(6)]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses
    if "upstream" in run.model.needs:
        src = load_checkpoint(upstream / "model.pt")["state_dict"]
        assert all(torch.equal(v, src[k]) for k, v in run.model.upstream.state_dict().items())


def test_random_model_is_the_seeded_default_init(tmp_path):
    summary = train(spec_for("random", seed=3), tmp_path / "r", dataset=TinySquares(), progress=False)
    assert summary["steps"] == 0
    ckpt = load_checkpoint(tmp_path / "r" / "model.pt")
    assert ckpt["config"]["init"] == "default" and ckpt["representation"] == "encoder output"
    torch.manual_seed(3)
    fresh = build_model("random", ckpt["config"], ckpt["context"]).state_dict()
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


def _interrupted_and_resumed(model, tmp_path, stop_at, **kw):
    train(spec_for(model), tmp_path / "full", dataset=TinySquares(), progress=False, **kw)

    def interrupt(step, _model):
        if step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="interrupted at step"):
        train(spec_for(model), tmp_path / "cut", dataset=TinySquares(), progress=False, on_step=interrupt, **kw)
    assert not (tmp_path / "cut" / "model.pt").exists()
    saved = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["extra"]["training"]["step"]
    assert 0 < saved < stop_at  # the interruption lost work that the resumed run must redo
    train(spec_for(model), tmp_path / "cut", dataset=TinySquares(), progress=False, resume=True, **kw)
    assert _same_weights(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    assert _losses(tmp_path / "full") == _losses(tmp_path / "cut")
    full = load_checkpoint(tmp_path / "full" / "model.pt")["extra"]["training"]["optimizers"]
    cut = load_checkpoint(tmp_path / "cut" / "model.pt")["extra"]["training"]["optimizers"]
    assert full.keys() == cut.keys()
    return full


@pytest.mark.parametrize("model", TRAINED)
def test_resume_reaches_the_uninterrupted_result(tmp_path, model, upstream_runs):
    optimizers = _interrupted_and_resumed(model, tmp_path, 8, upstream_path=upstream_for(model, upstream_runs))
    assert optimizers  # every optimiser the model configured was checkpointed
    if model == "factor-vae":
        assert set(optimizers) == {"model", "discriminator"}


@dataclass(frozen=True)
class ToyConfig:
    lr: float
    adversary_weight: float


def _toy_model_class():
    import torch.nn.functional as F

    from disentbench.models.base import Model, adam

    class Toy(Model):
        """Defined in this test only: a linear encoder on 8x8-pooled pixels and an adversary reading factor 0 from
        the codes, updated by a second optimiser on the same batch (the DualDis / FactorVAE shape)."""

        def __init__(self, config, context):
            super().__init__(config, context)
            self.encoder = torch.nn.Linear(64 * context.channels, 4)
            self.adversary = torch.nn.Linear(4, context.factor_sizes[0])

        @property
        def code_dim(self):
            return 4

        def encode(self, images):
            return self.encoder(F.avg_pool2d(images, 8).flatten(1))

        def configure_optimizers(self):
            return {"model": adam(self.encoder.parameters(), self.config.lr, (0.9, 0.999)),
                    "adversary": adam(self.adversary.parameters(), self.config.lr, (0.5, 0.9))}

        def train_step(self, batch):
            z = self.encode(batch.images) + 0.1 * torch.randn((len(batch), 4), generator=batch.noise)
            fool = -self.config.adversary_weight * F.cross_entropy(self.adversary(z), batch.factors[:, 0])
            loss = z.pow(2).mean() + fool
            self.update("model", loss)
            adv = F.cross_entropy(self.adversary(z.detach()), batch.factors[:, 0])
            self.update("adversary", adv)
            return {"loss": loss.detach(), "adversary": adv.detach()}

    return Toy


@pytest.fixture
def toy_model(tmp_path):
    from disentbench.models import registry

    register_model("toy-adversarial", family="test", source="this test", needs=("images", "factors"),
                   config=ToyConfig)(_toy_model_class())
    toml = tmp_path / "toy.toml"
    toml.write_text('name = "toy-adversarial"\nsource = "this test"\n[model]\nlr = 0.01\nadversary_weight = 0.5\n'
                    '[data]\nsplit_seed = 0\ntest_fraction = 0.25\n'
                    + "".join(f"[tiers.{t}]\nsubset = 0\nepochs = 1\nbatch_size = 8\ncheckpoint_every_steps = 2\n"
                              for t in ("smoke", "paper")))
    yield toml
    registry._REGISTRY.pop("toy-adversarial")


def test_a_model_defined_elsewhere_trains_and_resumes_through_the_generic_loop(tmp_path, toy_model):
    ref = load_reference("toy-adversarial", toy_model)

    def spec():
        return resolve_spec("toy-adversarial", tier="smoke", seed=4, dataset="tiny-squares", threads=1, reference=ref,
                            overrides={"epochs": 2}, log_every_steps=1)

    train(spec(), tmp_path / "full", dataset=TinySquares(), progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(spec(), tmp_path / "cut", dataset=TinySquares(), progress=False,
              on_step=lambda step, m: (_ for _ in ()).throw(KeyboardInterrupt) if step == 7 else None)
    train(spec(), tmp_path / "cut", dataset=TinySquares(), progress=False, resume=True)
    assert _same_weights(_weights(tmp_path / "full"), _weights(tmp_path / "cut"))
    assert _losses(tmp_path / "full") == _losses(tmp_path / "cut")
    opts = load_checkpoint(tmp_path / "full" / "model.pt")["extra"]["training"]["optimizers"]
    assert set(opts) == {"model", "adversary"} and opts["adversary"]["state"]  # both optimisers were checkpointed


def test_resume_refuses_other_settings_and_existing_runs(tmp_path):
    train(spec_for("multi-head", epochs=1), tmp_path / "r", dataset=TinySquares(), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(spec_for("multi-head", epochs=1), tmp_path / "r", dataset=TinySquares(), progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(spec_for("multi-head"), tmp_path / "empty", dataset=TinySquares(), resume=True)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(spec_for("multi-head"), cut, dataset=TinySquares(), progress=False,
              on_step=lambda step, m: (_ for _ in ()).throw(KeyboardInterrupt) if step == 4 else None)
    with pytest.raises(ValueError, match="different settings.*seed"):
        train(spec_for("multi-head", seed=5), cut, dataset=TinySquares(), resume=True)


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    """Issue 17.7: --resume of a finished run leaves it as it is and says so."""
    run = tmp_path / "r"
    train(spec_for("multi-head", epochs=1), run, dataset=TinySquares(), progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    summary = train(spec_for("multi-head", epochs=1), run, dataset=TinySquares(), progress=False, resume=True)
    assert summary["already_complete"] and summary["steps"] == 5
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_fresh_run_clears_what_a_run_killed_before_its_first_checkpoint_left(tmp_path):
    """Issue 17.5: no stale log lines appended, no temporaries left behind."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 1, "epoch": 1, "loss": 9.0}\n{"step": 2, "ep')
    (run / "config.json").write_text("{}")
    (run / ".checkpoint.pt.abc123.tmp").write_bytes(b"torn")
    train(spec_for("multi-head", epochs=1), run, dataset=TinySquares(), progress=False)
    steps = [r["step"] for r in _losses(run) if "event" not in r]
    assert steps == sorted(set(steps)) == list(range(1, 6))
    assert not list(run.glob(".*.tmp"))
    assert json.loads((run / "config.json").read_text())["model"] == "multi-head"


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
    with pytest.raises(ValueError, match="--tasks applies to models trained on task targets"):
        train(spec_for("ae"), tmp_path / "ae", dataset=TinySquares(), tasks_path=tmp_path / "other.h5")
    mine = TaskSet.generate(TinySquares().factor_space, 4, 1)
    mine.save(tmp_path / "mine.h5")
    summary = train(spec_for("one-head", epochs=1), tmp_path / "ok", dataset=TinySquares(),
                    tasks_path=tmp_path / "mine.h5", progress=False)
    assert len(summary["metrics"]["test_rmse_per_task"]) == 4
    assert summary["metrics"]["test_rmse"] == pytest.approx(np.mean(summary["metrics"]["test_rmse_per_task"]))


def test_staged_model_needs_a_matching_upstream_run(tmp_path, encoder_run):
    with pytest.raises(ValueError, match="--from RUN_DIR"):
        train(spec_for("heads-on-frozen"), tmp_path / "a", dataset=TinySquares())
    with pytest.raises(ValueError, match="3-channel|1-channel"):
        train(spec_for("decoder-on-frozen"), tmp_path / "b", dataset=TinySquares(channels=3), upstream_path=encoder_run)
    with pytest.raises(ValueError, match="--from applies"):
        train(spec_for("multi-head"), tmp_path / "c", dataset=TinySquares(), upstream_path=encoder_run)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        (tmp_path / "half").mkdir()
        train(spec_for("heads-on-frozen"), tmp_path / "d", dataset=TinySquares(), upstream_path=tmp_path / "half")


def test_every_reference_config_resolves_for_both_tiers():
    for info in list_models():
        for tier in ("smoke", "paper"):
            spec = resolve_spec(info.name, tier=tier, seed=0, dataset="dsprites-procedural")
            assert spec["source"] and spec["epochs"] >= 0 and spec["batch_size"] >= 2
            assert spec["epochs"] > 0 or not info.cls.trainable
    with pytest.raises(ValueError, match="unknown model"):
        load_reference("resnet")
    with pytest.raises(ConfigError, match="has no tier 'huge'"):
        resolve_spec("ae", tier="huge", seed=0, dataset="x")


@pytest.mark.parametrize("edit,message", [
    (("beta = 1.0", "betta = 1.0"), r"\[model\]: unknown key 'betta'"),
    (("beta = 1.0", ""), r"\[model\]: missing key 'beta'"),
    (("latent_dim = 8", 'latent_dim = "8"'), r"\[model\]: key 'latent_dim' must be an integer"),
    (("[tiers.paper]", "[tiers.paperr]"), r"missing tier table \[tiers.paper\]"),
    (("epochs = 2", "epochs = 2\nepoch = 3"), r"\[tiers.smoke\]: unknown key 'epoch'"),
    (("epochs = 2", ""), r"\[tiers.smoke\]: missing key 'epochs'"),
    (("split_seed = 0", "split_seed = 0\nn_tasks = 3"), r"\[data\]: key 'n_tasks' applies to task models only"),
    (("[data]", "[loss]\nkind = 'bernoulli'\n[data]"), r"unknown key 'loss'"),
    (("lr = 1e-3 ", "lr = true "), r"\[tiers.smoke\]: key 'lr' must be a number"),
])
def test_bad_configs_fail_with_one_line_naming_file_and_key(tmp_path, edit, message):
    path = tmp_path / "vae.toml"
    path.write_text((reference_dir() / "vae.toml").read_text().replace(*edit, 1))
    with pytest.raises(ConfigError, match=message) as info:
        load_reference("vae", path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cli_train_list_export_and_errors(tmp_path, capsys):
    from disentbench.cli import main
    from disentbench.models import load_encoder

    assert main(["train", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(m.name in listing for m in list_models()) and "Kumar et al. 2018" in listing
    config = tmp_path / "tiny.toml"
    text = (reference_dir() / "multi-head.toml").read_text()
    text = text.replace("subset = 4000", "subset = 48").replace("epochs = 4", "epochs = 1").replace(
        "batch_size = 64", "batch_size = 16")
    config.write_text(text)
    run = tmp_path / "run"
    args = ["train", "multi-head", "--dataset", "dsprites-procedural", "--seed", "1", "--tier", "smoke",
            "--config", str(config), "--out", str(run), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["dataset"] == "dsprites-procedural"
    from disentbench import evaluation as ev

    record = ev.evaluate(run, "dsprites-procedural", metrics="mig", n_points=500, progress=False, use_cache=False)
    assert record["model_protocol"] == summary["metrics"]  # the model's own numbers travel into the score record
    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0 and "already complete" in capsys.readouterr().out
    assert main(["export", str(run), "--torchscript", str(tmp_path / "enc.pt")]) == 0
    eager, info = load_encoder(run)
    scripted, _ = load_encoder(tmp_path / "enc.pt")
    x = torch.rand(2, 1, 64, 64)
    assert info["model_name"] == "multi-head" and torch.allclose(eager(x), scripted(x), atol=1e-6)
    assert main(["train", "resnet", "--dataset", "dsprites-procedural", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
    assert main(["train", "vae", "--dataset", "dsprites-procedural"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--torchscript", str(tmp_path / "e.pt")]) == 2


def test_full_disk_mid_training_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    real_save, calls = torch.save, []

    def flaky_save(obj, fh, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint (step 5, the end of epoch 1) hits a full disk
            fh.write(b"partial")
            raise RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed; "
                               "No space left on device")
        return real_save(obj, fh, *a, **k)

    monkeypatch.setattr(torch, "save", flaky_save)
    with pytest.raises(AtomicWriteError, match="disk full while writing .*checkpoint.pt"):
        train(spec_for("multi-head"), tmp_path / "r", dataset=TinySquares(), progress=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["extra"]["training"]["step"] == 3
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["checkpoint.pt", "config.json", "log.jsonl"]
    train(spec_for("multi-head"), tmp_path / "r", dataset=TinySquares(), progress=False, resume=True)
    train(spec_for("multi-head"), tmp_path / "full", dataset=TinySquares(), progress=False)
    assert _same_weights(_weights(tmp_path / "r"), _weights(tmp_path / "full"))
