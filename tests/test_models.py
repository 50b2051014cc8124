"""Models of seed 004 (shapes, registry) and the checkpoint format (round trip, hostile files, TorchScript)."""

from __future__ import annotations

import errno
import os
import pickle
import zipfile

import pytest

torch = pytest.importorskip("torch")

from disentbench.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointWriteError,
    export_torchscript,
    is_torchscript,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from disentbench.models import build_model, list_models, load_encoder, representation_of  # noqa: E402


def config(name, channels=1, n_tasks=3):
    gaussian = name in ("vae", "beta-vae", "factor-vae")
    act = "tanh" if name in ("ae", "vae", "beta-vae", "factor-vae") else "relu"
    cfg = {"name": name, "channels": channels, "latent_dim": 8, "encoder": {"activation": act, "gaussian": gaussian}}
    if name in ("single-task", "multi-head", "one-head", "heads-on-frozen"):
        cfg["heads"] = {"n_tasks": 1 if name == "single-task" else n_tasks, "hidden": [300, 300, 300], "activation": act}
    if name in ("ae", "vae", "beta-vae", "factor-vae", "decoder-on-frozen"):
        cfg["decoder"] = {"activation": act}
    if name == "factor-vae":
        cfg["discriminator"] = {"hidden": 1000, "layers": 6}
    return cfg


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(name, channels):
    torch.manual_seed(0)
    model = build_model(config(name, channels))
    x = torch.rand(2, channels, 64, 64)
    assert model.encode(x).shape == (2, 8)
    out = model(x)
    if name in ("multi-head", "one-head", "heads-on-frozen"):
        assert out.shape == (2, 3)
    elif name == "single-task":
        assert out.shape == (2, 1)
    elif name == "random":
        assert out.shape == (2, 8)
    else:
        logits, mean, logvar = out
        assert logits.shape == (2, channels, 64, 64) and mean.shape == (2, 8)
        assert (logvar is None) == (representation_of(config(name)) == "encoder")


def test_architecture_matches_table_2_and_3():
    model = build_model(config("multi-head"))
    convs = [m for m in model.encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 128, 256, 256]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert len(model.heads.heads) == 3
    widths = [m.out_features for m in model.heads.heads[0].net if isinstance(m, torch.nn.Linear)]
    assert widths == [300, 300, 300, 1]
    one = build_model(config("one-head"))
    assert len(one.heads.heads) == 1
    assert [m.out_features for m in one.heads.heads[0].net if isinstance(m, torch.nn.Linear)] == [300, 300, 300, 3]
    disc = build_model(config("factor-vae")).discriminator
    assert [m.out_features for m in disc.net if isinstance(m, torch.nn.Linear)] == [1000] * 5 + [2]


def test_unknown_model_and_bad_activation():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model({**config("ae"), "name": "resnet"})
    with pytest.raises(ValueError, match="unknown activation"):
        build_model({**config("ae"), "encoder": {"activation": "gelu"}})


def _save(path, name="vae", extra=None):
    torch.manual_seed(1)
    model = build_model(config(name))
    save_checkpoint(path, model_name=name, config=config(name), state_dict=model.state_dict(),
                    representation=representation_of(config(name)), extra=extra or {})
    return model


def test_checkpoint_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(5)
    model = _save(tmp_path / "c.pt", extra={"step": 7, "rng": gen.get_state(), "losses": [1.5, 2.0]})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["format"] == "disentbench-checkpoint" and ckpt["representation"] == "encoder.mean"
    assert ckpt["extra"]["step"] == 7 and ckpt["extra"]["losses"] == [1.5, 2.0]
    assert torch.equal(ckpt["extra"]["rng"], gen.get_state())
    rebuilt = model_from_checkpoint(ckpt)
    for k, v in model.state_dict().items():
        assert torch.equal(v, rebuilt.state_dict()[k])
    assert not list(tmp_path.glob(".*tmp"))


def test_load_encoder_is_deterministic_mean(tmp_path):
    model = _save(tmp_path / "c.pt").eval()
    fn, info = load_encoder(tmp_path / "c.pt")
    x = torch.rand(4, 1, 64, 64)
    assert info["representation"] == "encoder.mean" and info["latent_dim"] == 8
    with torch.no_grad():
        assert torch.equal(fn(x), model.encoder(x)[:, :8])
    assert torch.equal(fn(x), fn(x))
    with pytest.raises(ValueError, match="shape"):
        fn(torch.rand(4, 64, 64))


@pytest.mark.parametrize("name", ["multi-head", "vae"])
def test_torchscript_export_equals_eager(tmp_path, name):
    _save(tmp_path / "c.pt", name)
    export_torchscript(tmp_path / "c.pt", tmp_path / "enc.pt")
    assert is_torchscript(tmp_path / "enc.pt") and not is_torchscript(tmp_path / "c.pt")
    scripted = torch.jit.load(str(tmp_path / "enc.pt"))
    eager, _ = load_encoder(tmp_path / "c.pt")
    ts_fn, info = load_encoder(tmp_path / "enc.pt")
    x = torch.rand(3, 1, 64, 64)
    assert info["source"] == "torchscript"
    assert torch.allclose(scripted(x), eager(x), atol=1e-6, rtol=1e-5)
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
    with pytest.raises(CheckpointError, match="refusing to unpickle untrusted objects"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()


def test_corrupt_truncated_and_foreign_files(tmp_path):
    _save(tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("hello, not a checkpoint\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("trunc.pt", "text.pt", "empty.pt"):
        with pytest.raises(CheckpointError, match="not a (torch|readable)"):
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
    base = load_checkpoint(_save(tmp_path / "c.pt") and tmp_path / "c.pt")
    cases = {
        "version": ({**base, "format_version": 99}, "format_version"),
        "name": ({**base, "model_name": "resnet"}, "unknown model 'resnet'"),
        "shape": ({**base, "config": {**base["config"], "latent_dim": 4}}, "does not match"),
        "keys": ({**base, "state_dict": {k: v for k, v in base["state_dict"].items() if "dense" not in k}}, "missing"),
    }
    for key, (payload, message) in cases.items():
        torch.save(payload, tmp_path / f"{key}.pt")
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / f"{key}.pt")


def test_full_disk_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    _save(tmp_path / "c.pt", extra={"step": 1})
    before = (tmp_path / "c.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, fh, *a, **k):
        fh.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointWriteError, match="No space left"):
        _save(tmp_path / "c.pt", extra={"step": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "c.pt").read_bytes() == before
    assert load_checkpoint(tmp_path / "c.pt")["extra"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
