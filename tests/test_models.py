"""The model registry and shared blocks (shapes, Table 2/3 architecture), the checkpoint format (round trip, hostile
and broken files, full disk) and export."""

from __future__ import annotations

import errno
import os
import pickle
import zipfile

import pytest

torch = pytest.importorskip("torch")

from disentbench.checkpoint import (  # noqa: E402
    CheckpointError,
    is_torchscript,
    load_checkpoint,
    save_checkpoint,
    save_model,
)
from disentbench.export import export_torchscript  # noqa: E402
from disentbench.fileio import AtomicWriteError  # noqa: E402
from disentbench.models import (  # noqa: E402
    ModelContext,
    build_model,
    get_model,
    list_models,
    load_encoder,
    load_model,
    register_model,
)
from disentbench.models.base import Model  # noqa: E402
from disentbench.models.blocks import reverse_gradient  # noqa: E402
from disentbench.training import resolve_spec  # noqa: E402


def make(name, channels=1, n_tasks=3, seed=1):
    """A registered model built from its reference config (smoke tier), with a seeded init; staged models get an
    upstream multi-head network."""
    info = get_model(name)
    config = resolve_spec(name, tier="smoke", seed=0, dataset="x")["config"]
    upstream = None
    if "upstream" in info.needs:
        upstream = make(info.upstream[0] if info.upstream else "multi-head", channels, n_tasks, seed + 1)
    torch.manual_seed(seed)
    return build_model(name, config, ModelContext(channels, n_tasks if "targets" in info.needs else None,
                                                  (3, 4), upstream))


def test_registry_lists_filters_and_refuses_unknown_names():
    names = [m.name for m in list_models()]
    assert names[:8] == ["random", "single-task", "multi-head", "one-head", "ae", "vae", "beta-vae", "factor-vae"]
    assert {"beta-tcvae", "dip-vae-i", "dip-vae-ii", "annealed-vae"} <= set(names)
    assert {"heads-on-frozen", "decoder-on-frozen"} <= {m.name for m in list_models(leaderboard=False)}
    assert {"heads-on-frozen", "decoder-on-frozen"} <= {m.name for m in list_models(needs="upstream")}
    assert all(m.family == "auto-encoder" for m in list_models(family="auto-encoder"))
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        get_model("resnet")
    with pytest.raises(ValueError, match="unknown needs"):
        register_model("x", family="f", source="s", needs=("pixels",), config=dict)
    with pytest.raises(TypeError, match="not a disentbench"):
        register_model("x", family="f", source="s", needs=(), config=dict)(torch.nn.Linear)


@pytest.mark.parametrize("name", [m.name for m in list_models()])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_model_encodes_to_its_code_dim(name, channels):
    model = make(name, channels).eval()
    x = torch.rand(2, channels, 64, 64)
    codes = model.encode(x)
    assert codes.shape == (2, model.code_dim)
    assert torch.equal(codes, model.encode(x))  # deterministic in eval mode (the posterior mean for VAEs)


def test_architecture_matches_table_2_and_3():
    model = make("multi-head")
    convs = [m for m in model.encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 128, 256, 256]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert len(model.heads.heads) == 3
    widths = [m.out_features for m in model.heads.heads[0].net if isinstance(m, torch.nn.Linear)]
    assert widths == [300, 300, 300, 1]
    one = make("one-head")
    assert len(one.heads.heads) == 1
    assert [m.out_features for m in one.heads.heads[0].net if isinstance(m, torch.nn.Linear)] == [300, 300, 300, 3]
    disc = make("factor-vae").discriminator
    assert [m.out_features for m in disc.net if isinstance(m, torch.nn.Linear)] == [1000] * 5 + [2]


def test_strict_model_config_names_the_key():
    config = resolve_spec("vae", tier="smoke", seed=0, dataset="x")["config"]
    ctx = ModelContext(1)
    with pytest.raises(ValueError, match="unknown key 'latent_dims'"):
        build_model("vae", {**config, "latent_dims": 4}, ctx)
    with pytest.raises(ValueError, match="missing key 'beta'"):
        build_model("vae", {k: v for k, v in config.items() if k != "beta"}, ctx)
    with pytest.raises(ValueError, match="key 'activation' must be one of relu, tanh"):
        build_model("vae", {**config, "activation": "gelu"}, ctx)
    with pytest.raises(ValueError, match="key 'latent_dim' must be an integer"):
        build_model("vae", {**config, "latent_dim": 2.5}, ctx)
    with pytest.raises(ValueError, match="needs upstream"):
        build_model("heads-on-frozen", resolve_spec("heads-on-frozen", tier="smoke", seed=0, dataset="x")["config"],
                    ModelContext(1, 3))


def test_gradient_reversal_is_identity_forward_and_negated_backward():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-0.5, -1.0, -1.5]))


def test_checkpoint_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(5)
    model = make("vae")
    save_model(tmp_path / "c.pt", model, extra={"step": 7, "rng": gen.get_state(), "losses": [1.5, 2.0]})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["format"] == "disentbench-checkpoint" and ckpt["representation"] == "posterior mean"
    assert ckpt["extra"]["step"] == 7 and ckpt["extra"]["losses"] == [1.5, 2.0]
    assert torch.equal(ckpt["extra"]["rng"], gen.get_state())
    rng = torch.get_rng_state()
    rebuilt, _ = load_model(tmp_path / "c.pt")
    assert torch.equal(torch.get_rng_state(), rng)  # rebuilding never touches the global RNG
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in model.state_dict().items())
    assert not list(tmp_path.glob(".*tmp"))


def test_staged_model_checkpoint_carries_its_upstream(tmp_path):
    model = make("decoder-on-frozen")
    save_model(tmp_path / "d.pt", model)
    rebuilt, ckpt = load_model(tmp_path / "d.pt")
    assert ckpt["context"]["upstream"]["name"] == "multi-head"
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(rebuilt.encode(x), model.eval().encode(x))


def test_load_encoder_is_deterministic_mean(tmp_path):
    model = make("vae").eval()
    save_model(tmp_path / "c.pt", model)
    fn, info = load_encoder(tmp_path / "c.pt")
    x = torch.rand(4, 1, 64, 64)
    assert info["representation"] == "posterior mean" and info["latent_dim"] == 8 and info["channels"] == 1
    with torch.no_grad():
        assert torch.equal(fn(x), model.encoder(x)[:, :8])
    assert torch.equal(fn(x), fn(x))
    with pytest.raises(ValueError, match="shape"):
        fn(torch.rand(4, 64, 64))


@pytest.mark.parametrize("name", ["multi-head", "vae", "heads-on-frozen"])
def test_torchscript_export_equals_eager(tmp_path, name):
    save_model(tmp_path / "c.pt", make(name))
    export_torchscript(tmp_path / "c.pt", tmp_path / "enc.pt")
    assert is_torchscript(tmp_path / "enc.pt") and not is_torchscript(tmp_path / "c.pt")
    eager, _ = load_encoder(tmp_path / "c.pt")
    ts_fn, info = load_encoder(tmp_path / "enc.pt")
    x = torch.rand(5, 1, 64, 64)  # another batch size than the trace's
    assert info["source"] == "torchscript"
    assert torch.allclose(ts_fn(x), eager(x), atol=1e-6, rtol=1e-5)
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_checkpoint(tmp_path / "enc.pt")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


@pytest.mark.parametrize("how", ["raw-pickle", "torch-save"])
def test_hostile_pickle_is_refused_not_executed(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    if how == "raw-pickle":
        path.write_bytes(pickle.dumps(_Payload()))
    else:
        torch.save({"format": "disentbench-checkpoint", "payload": _Payload()}, path)
    message = "not a checkpoint" if how == "raw-pickle" else "refusing to unpickle untrusted objects"
    with pytest.raises(CheckpointError, match=message):  # a bare pickle is no torch file: never unpickled
        load_checkpoint(path)
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()


def test_corrupt_truncated_and_foreign_files(tmp_path):
    save_model(tmp_path / "c.pt", make("vae"))
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("hello, not a checkpoint\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("trunc.pt", "text.pt", "empty.pt"):
        with pytest.raises(CheckpointError, match="not a (torch|readable|checkpoint)"):
            load_checkpoint(tmp_path / name)
    with zipfile.ZipFile(tmp_path / "zip.pt", "w") as zf:
        zf.writestr("hello.txt", "x")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "zip.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a disentbench checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a file"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_wrong_format_version_unknown_model_and_mismatched_state(tmp_path):
    save_model(tmp_path / "c.pt", make("vae"))
    base = load_checkpoint(tmp_path / "c.pt")
    cases = {
        "version": ({**base, "format_version": 1}, "format_version"),
        "name": ({**base, "model_name": "resnet"}, "unknown model 'resnet'"),
        "config": ({**base, "config": {**base["config"], "betta": 2.0}}, "unknown key 'betta'"),
        "shape": ({**base, "config": {**base["config"], "latent_dim": 4}}, "does not match"),
        "keys": ({**base, "state_dict": {k: v for k, v in base["state_dict"].items() if "dense" not in k}}, "missing"),
    }
    for key, (payload, message) in cases.items():
        torch.save(payload, tmp_path / f"{key}.pt")
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / f"{key}.pt")


def test_full_disk_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = make("vae")
    save_model(tmp_path / "c.pt", model, extra={"step": 1})
    before = (tmp_path / "c.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, fh, *a, **k):  # PyTorch's zip writer re-raises ENOSPC as a RuntimeError
        fh.write(b"partial bytes")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos; No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(AtomicWriteError, match="disk full while writing .*c.pt") as info:
        save_model(tmp_path / "c.pt", model, extra={"step": 2})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "c.pt").read_bytes() == before
    assert load_checkpoint(tmp_path / "c.pt")["extra"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_save_checkpoint_is_plain_data(tmp_path):
    save_checkpoint(tmp_path / "p.pt", model_name="random", config={"a": 1}, context={"channels": 1},
                    state_dict={"w": torch.zeros(2)}, representation="encoder output")
    assert load_checkpoint(tmp_path / "p.pt")["context"] == {"channels": 1}
    assert issubclass(get_model("random").cls, Model)


AUTO_ENCODERS = [m.name for m in list_models(family="auto-encoder")]


@pytest.mark.parametrize("name", AUTO_ENCODERS)
def test_smoke_auto_encoders_start_from_a_code_that_varies_with_the_image(name):
    """PyTorch's default init shrinks the across-image spread ~2x per tanh conv layer (the code's std ~0.002 after
    six): the decoder then learns the mean image and the code collapses in the smoke budget. The smoke tier's He
    init keeps the spread (docs/training.md, smoke deviations)."""
    images = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    spreads = {}
    for init in ("kaiming", "default"):
        config = {**resolve_spec(name, tier="smoke", seed=0, dataset="x")["config"], "init": init}
        torch.manual_seed(1)
        model = build_model(name, config, ModelContext(3, None, (3, 4), None))
        with torch.no_grad():
            spreads[init] = model.encode(images).std(0).mean().item()
    assert resolve_spec(name, tier="smoke", seed=0, dataset="x")["config"]["init"] == "kaiming"
    assert spreads["kaiming"] > 0.05 > 0.01 > spreads["default"]
