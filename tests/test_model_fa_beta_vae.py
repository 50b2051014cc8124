"""Feature-aggregation β-VAE (seed 003), both stages: the cosine β schedule, unit-norm non-negative features, the
extractor learning the factors, the frozen extractor, falling losses, the deterministic representation, the
supervised-pretrained mark in records and rendered tables, refused upstream runs, the look-alike option and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_checks import TinySquares, same_weights  # noqa: E402

from disentbench.checkpoint import load_checkpoint  # noqa: E402
from disentbench.models import ModelContext, build_model, get_model  # noqa: E402
from disentbench.models.factor_classifier import correct_per_factor  # noqa: E402
from disentbench.models.feature_aggregation import cosine_beta  # noqa: E402
from disentbench.training import load_reference, reference_dir, resolve_spec, setup_run, train  # noqa: E402

#: stage-1 and stage-3 budgets on the tiny grid (48 images: 43 train / 5 test)
BACKBONE = {"subset": 0, "epochs": 40, "batch_size": 8}
VAE = {"subset": 0, "epochs": 2, "batch_size": 8, "encoder_hidden": [64], "decoder_hidden": [64, 64]}
CHANCE = torch.tensor([1 / 4, 1 / 4, 1 / 3], dtype=torch.float64)


class OfficialSquares(TinySquares):
    """Stands in for an official dataset whose procedural look-alike is TinySquares (same factors, other name)."""

    name = "official-squares"


def vae_spec(**overrides):
    return resolve_spec("fa-beta-vae", tier="smoke", seed=0, dataset="tiny-squares", threads=1, log_every_steps=1,
                        overrides={**VAE, **overrides})


@pytest.fixture(scope="module")
def backbone_run(tmp_path_factory):
    """A finished fa-backbone run on the tiny grid (stage 1)."""
    out = tmp_path_factory.mktemp("runs") / "backbone"
    spec = resolve_spec("fa-backbone", tier="smoke", seed=0, dataset="tiny-squares", threads=1, overrides=BACKBONE)
    train(spec, out, dataset=TinySquares(), progress=False)
    return out


def test_cosine_beta_schedule_of_the_paper_config():
    """Sec. 2.3 with t_start = 10, t_end = 79 (zero-based epochs): 0.005 up to epoch 10, 0.2025 at 44.5 (the midpoint),
    0.4 from 79 on, increasing strictly in between; the model reads it per epoch from its config."""
    config = resolve_spec("fa-beta-vae", tier="paper", seed=0, dataset="x")["config"]
    assert (config["beta_start"], config["beta_end"], config["beta_start_epoch"], config["beta_end_epoch"]) == (
        0.005, 0.4, 10, 79)
    backbone = build_model("fa-backbone", resolve_spec("fa-backbone", tier="smoke", seed=0, dataset="x")["config"],
                           ModelContext(1, factor_sizes=(4, 4, 3)))
    beta = build_model("fa-beta-vae", {**config, "encoder_hidden": [8], "decoder_hidden": [8]},
                       ModelContext(1, upstream=backbone)).beta
    assert all(beta(t) == pytest.approx(0.005, abs=1e-12) for t in range(11))
    assert cosine_beta(44.5, 0.005, 0.4, 10, 79) == pytest.approx(0.2025)
    assert all(beta(t) == pytest.approx(0.4) for t in range(79, 120))
    grid = [cosine_beta(t, 0.005, 0.4, 10, 79) for t in np.linspace(10, 79, 139)]
    assert all(b < c for b, c in zip(grid, grid[1:]))


def test_features_are_unit_norm_non_negative_and_deterministic_in_eval_mode():
    config = resolve_spec("fa-backbone", tier="smoke", seed=0, dataset="x")["config"]
    torch.manual_seed(0)
    model = build_model("fa-backbone", config, ModelContext(1, factor_sizes=(4, 4, 3)))
    x = torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    model.eval()
    f = model.encode(x)
    assert f.shape == (6, 512) == (6, model.code_dim)
    assert torch.allclose(f.norm(dim=1), torch.ones(6)) and (f >= 0).all()
    assert torch.equal(f, model.encode(x))
    model.train()
    assert not torch.equal(model.encode(x), f)  # Dropout2d and batch statistics: only eval mode is the feature


def test_the_extractor_learns_every_factor(backbone_run):
    """Stage 1 on the tiny grid (200 steps): its linear heads predict every factor above 1.5× chance on all 48
    images."""
    from disentbench.models import load_model

    model, _ = load_model(backbone_run)
    ds = TinySquares()
    images = torch.from_numpy(ds.images(np.arange(48))).permute(0, 3, 1, 2).float() / 255
    classes = torch.from_numpy(ds.factor_space.index_to_classes(np.arange(48)))
    with torch.no_grad():
        accuracy = correct_per_factor(model.heads(model.encode(images)), classes) / 48
    assert (accuracy > 1.5 * CHANCE).all(), accuracy


def test_stage_3_keeps_the_extractor_bit_identical_and_its_losses_fall(backbone_run, tmp_path):
    """The β-VAE trains on the frozen features (the extractor's weights in its checkpoint equal the stage-1 run's, and
    no extractor parameter is in its optimiser); over 80 steps its reconstruction falls (from ≈ 117, sigmoid outputs
    of 0.5 against features of ≈ 0.04, by a fifth in a measured run) and β is β_start for zero-based epochs 0-2."""
    summary = train(vae_spec(epochs=40, batch_size=16), tmp_path / "vae", dataset=TinySquares(),
                    upstream_path=backbone_run, progress=False)
    stage1 = load_checkpoint(backbone_run / "model.pt")["state_dict"]
    stage3 = load_checkpoint(tmp_path / "vae" / "model.pt")["state_dict"]
    assert same_weights({k[len("upstream."):]: v for k, v in stage3.items() if k.startswith("upstream.")}, stage1)
    run = setup_run(vae_spec(), dataset=TinySquares(), upstream_path=backbone_run)
    trained = {id(p) for group in run.model.optimizers["model"].param_groups for p in group["params"]}
    assert not any(id(p) in trained for p in run.model.upstream.parameters())
    steps = [json.loads(line) for line in (tmp_path / "vae" / "log.jsonl").read_text().splitlines()]
    recon = [r["recon"] for r in steps if "event" not in r]
    assert np.mean(recon[-10:]) < 0.9 * np.mean(recon[:10])
    early = [r["beta"] for r in steps if "event" not in r and r["epoch"] <= 3]
    assert early and all(b == pytest.approx(0.005) for b in early)
    assert set(summary["metrics"]) == {"test_recon", "test_kl", "active_latents"}


def test_the_representation_is_the_deterministic_posterior_mean(backbone_run):
    model = setup_run(vae_spec(), dataset=TinySquares(), upstream_path=backbone_run).model.eval()
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    codes = model.encode(x)
    assert codes.shape == (5, 18) == (5, model.code_dim)
    assert torch.equal(codes, model.encode(x))
    assert torch.equal(codes, model.posterior(model.upstream.encode(x))[0])
    model.train()  # the extractor stays in eval mode whatever the VAE's mode
    assert not model.upstream.training


def test_the_record_and_the_rendered_table_say_supervised_pretrained(backbone_run, tmp_path):
    from disentbench import evaluation as ev
    from disentbench.leaderboard import LEADERBOARD_VERSION, add_records, read_table, render_markdown

    assert get_model("fa-beta-vae").supervision == "supervised-pretrained" and get_model("fden").supervision == ""
    train(vae_spec(epochs=1), tmp_path / "vae", dataset=TinySquares(), upstream_path=backbone_run, progress=False)
    records = [ev.evaluate(path, "tiny-squares", dataset=TinySquares(), metrics="mig", n_points=None, progress=False,
                           cache_root=tmp_path / "cache", tier="smoke", name=name)
               for path, name in ((tmp_path / "vae" / "model.pt", "fa-beta-vae"), (backbone_run, "fa-backbone"))]
    assert [r["supervision"] for r in records] == ["supervised-pretrained", None]
    for i, record in enumerate(records):
        ev.write_record(record, tmp_path / f"r{i}.json")
        assert ev.read_record(tmp_path / f"r{i}.json")["supervision"] == record["supervision"]
    board = tmp_path / f"v{LEADERBOARD_VERSION}"
    board.mkdir()
    add_records(records, board)
    markdown = render_markdown(read_table(board / "smoke.csv"))
    assert "| fa-beta-vae (supervised-pretrained) | 0 |" in markdown and "| fa-backbone | 0 |" in markdown
    assert "`(supervised-pretrained)`: its representation builds on a stage trained on the factor labels." in markdown


def test_an_upstream_of_another_model_or_a_missing_one_is_refused(backbone_run, tmp_path):
    ae = tmp_path / "ae"
    train(resolve_spec("ae", tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                       overrides={"subset": 0, "epochs": 1, "batch_size": 24}), ae, dataset=TinySquares(),
          progress=False)
    with pytest.raises(ValueError, match=f"upstream run {ae} is a 'ae' run; this model trains on a fa-backbone run"):
        train(vae_spec(), tmp_path / "a", dataset=TinySquares(), upstream_path=ae, progress=False)
    with pytest.raises(FileNotFoundError, match=f"no checkpoint or run folder at {tmp_path / 'gone'}"):
        train(vae_spec(), tmp_path / "b", dataset=TinySquares(), upstream_path=tmp_path / "gone", progress=False)


def test_fine_tune_on_the_look_alike_train_and_score_on_the_official_files(backbone_run, tmp_path):
    """With ``[data] upstream_dataset`` naming the look-alike the extractor was fine-tuned on, stage 3 trains on the
    other dataset (same factors); without it that upstream is refused, and a look-alike with other factor sizes is
    refused with it. Only staged models take the key."""
    text = (reference_dir() / "fa-beta-vae.toml").read_text()
    toml = tmp_path / "fa-official.toml"
    toml.write_text(text.replace("[data]\n", '[data]\nupstream_dataset = "tiny-squares"\n', 1))
    spec = resolve_spec("fa-beta-vae", tier="smoke", seed=0, dataset="official-squares", threads=1,
                        reference=load_reference("fa-beta-vae", toml), overrides={**VAE, "epochs": 1})
    assert spec["data"]["upstream_dataset"] == "tiny-squares"
    summary = train(spec, tmp_path / "official", dataset=OfficialSquares(), upstream_path=backbone_run, progress=False)
    assert summary["dataset"] == "official-squares"
    assert json.loads((tmp_path / "official" / "config.json").read_text())["upstream"]["dataset"] == "tiny-squares"
    with pytest.raises(ValueError, match=f"upstream run {backbone_run} was trained on 'tiny-squares', not "
                                         "'official-squares'"):
        train(vae_spec(), tmp_path / "refused", dataset=OfficialSquares(), upstream_path=backbone_run, progress=False)

    class OtherGrid(OfficialSquares):
        def __init__(self):
            super().__init__(sizes=(4, 4, 2))

    with pytest.raises(ValueError, match=r"trained on factor sizes \[4, 4, 3\]; dataset 'official-squares' has "
                                         r"\[4, 4, 2\]: not a look-alike"):
        train(spec, tmp_path / "other", dataset=OtherGrid(), upstream_path=backbone_run, progress=False)
    ae_toml = tmp_path / "ae.toml"
    ae_toml.write_text((reference_dir() / "ae.toml").read_text().replace("[data]\n", '[data]\nupstream_dataset = "x"\n'))
    with pytest.raises(ValueError, match="key 'upstream_dataset' applies to staged models"):
        load_reference("ae", ae_toml)


@pytest.mark.parametrize("stage", ["fa-backbone", "fa-beta-vae"])
def test_resume_of_each_stage_reaches_the_uninterrupted_run(backbone_run, tmp_path, stage):
    if stage == "fa-backbone":
        spec = resolve_spec(stage, tier="smoke", seed=0, dataset="tiny-squares", threads=1,
                            overrides={"subset": 0, "epochs": 2, "batch_size": 16, "checkpoint_every_steps": 1})
        upstream = None
    else:
        spec, upstream = vae_spec(checkpoint_every_steps=1), backbone_run

    class Stop(Exception):
        pass

    def stop(step, model):
        if step == 3:
            raise Stop

    train(spec, tmp_path / "full", dataset=TinySquares(), upstream_path=upstream, progress=False)
    with pytest.raises(Stop):
        train(spec, tmp_path / "cut", dataset=TinySquares(), upstream_path=upstream, progress=False, on_step=stop)
    train(spec, tmp_path / "cut", dataset=TinySquares(), upstream_path=upstream, progress=False, resume=True)
    full, cut = (load_checkpoint(Path(tmp_path) / d / "model.pt") for d in ("full", "cut"))
    assert same_weights(full["state_dict"], cut["state_dict"])
    assert full["extra"]["metrics"] == cut["extra"]["metrics"]
