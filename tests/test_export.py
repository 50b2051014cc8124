"""Exchange formats: .pt2 programs (export, foreign modules, the audit of what torch.export.load would run),
safetensors folders (round trip, no pickle), the export command and the evaluate messages for wrong inputs."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentbench.checkpoint import CheckpointError, is_pt2, load_checkpoint, save_model  # noqa: E402
from disentbench.cli import main  # noqa: E402
from disentbench.evaluation import open_model  # noqa: E402
from disentbench.exchange import UntrustedProgram, audit_pt2  # noqa: E402
from disentbench.export import export  # noqa: E402
from disentbench.models import load_encoder  # noqa: E402

from test_models import make  # noqa: E402


@pytest.mark.parametrize("name", ["multi-head", "vae", "heads-on-frozen"])
def test_pt2_and_safetensors_round_trips_give_the_checkpoint_codes(tmp_path, name):
    save_model(tmp_path / "c.pt", make(name))
    export(tmp_path / "c.pt", tmp_path / "enc.pt2")
    export(tmp_path / "c.pt", tmp_path / "st", "safetensors")
    assert is_pt2(tmp_path / "enc.pt2") and not is_pt2(tmp_path / "c.pt")
    eager, info = load_encoder(tmp_path / "c.pt")
    x = torch.rand(5, 1, 64, 64)  # another batch size than the export's example
    pt2, pt2_info = load_encoder(tmp_path / "enc.pt2")
    assert pt2_info["source"] == "pt2"
    assert torch.allclose(pt2(x), eager(x), atol=1e-6, rtol=1e-5) and pt2(x[:1]).shape == eager(x[:1]).shape
    st, st_info = load_encoder(tmp_path / "st")
    assert torch.equal(st(x), eager(x))  # bit-identical: same registry model, same weights
    assert st_info["content_sha256"] == info["content_sha256"] and st_info["source"] == "safetensors"
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "st" / "config.json").read_text())
    assert meta["model_name"] == name and meta["disentbench_version"]
    with pytest.raises(CheckpointError, match="torch.export program"):
        load_checkpoint(tmp_path / "enc.pt2")


def test_safetensors_path_never_unpickles(tmp_path, monkeypatch):
    save_model(tmp_path / "c.pt", make("heads-on-frozen"))
    export(tmp_path / "c.pt", tmp_path / "st", "safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used on the safetensors path")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    fn, info = load_encoder(tmp_path / "st")
    assert fn(torch.rand(2, 1, 64, 64)).shape == (2, info["latent_dim"])


def test_safetensors_folder_errors_name_the_file(tmp_path):
    save_model(tmp_path / "c.pt", make("vae"))
    export(tmp_path / "c.pt", tmp_path / "st", "safetensors")
    config = tmp_path / "st" / "config.json"
    meta = json.loads(config.read_text())
    config.write_text(json.dumps({**meta, "format_version": 9}))
    with pytest.raises(CheckpointError, match=r"config\.json: unsupported format_version 9"):
        load_encoder(tmp_path / "st")
    config.write_text(json.dumps({**meta, "config": {**meta["config"], "latent_dim": 4}}))
    with pytest.raises(CheckpointError, match="does not match"):
        load_encoder(tmp_path / "st")


class _Foreign(torch.nn.Module):
    """An encoder this project did not write: normalisation, a conv, pooling, a linear map."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 4, stride=4)
        self.fc = torch.nn.Linear(4, 6)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x * 2 - 1)).mean(dim=(2, 3)))


def _save_program(module, path, channels=3):
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module.eval(), (torch.zeros(2, channels, 64, 64),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


def test_foreign_pt2_is_evaluated(tmp_path):
    torch.manual_seed(0)
    module = _Foreign()
    _save_program(module, tmp_path / "foreign.pt2")
    source = open_model(tmp_path / "foreign.pt2")
    assert source.kind == "pt2"
    x = torch.rand(7, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(source.encoder(x.numpy()), module(x), atol=1e-6)
    record_dir = tmp_path / "rec.json"
    assert main(["evaluate", "--model", str(tmp_path / "foreign.pt2"), "--dataset", "shapes3d-procedural",
                 "--metrics", "mig", "--n-points", "300", "--no-cache", "--quiet", "--out", str(record_dir)]) == 0
    record = json.loads(record_dir.read_text())
    assert record["model_source"]["kind"] == "pt2" and record["code_dim"] == 6


def _rewrite(src, dst, edit):
    """Copy a zip archive, replacing members through ``edit(name, data) -> data | None`` (None: drop)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PT2",))


def test_pt2_audit_refuses_what_torch_export_load_would_execute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _save_program(_Foreign(), tmp_path / "ok.pt2")
    audit_pt2(tmp_path / "ok.pt2")
    evil_pickle = pickle.dumps(_Payload())

    def sample_inputs(name, data):  # torch.load(weights_only=True) fails, then torch retries with False
        return evil_pickle if "sample_inputs" in name else data

    def graph_call(name, data):  # a node calling torch.os.system: resolved by attribute lookup under torch
        if name.endswith("models/model.json"):
            text = data.decode()
            return text.replace('"torch.ops.aten.relu.default"', '"torch.os.system"', 1).encode()
        return data

    def opaque(name, data):  # a constant loaded with pickle.loads
        if name.endswith("model_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                                                "use_pickle": True, "tensor_meta": None}}}).encode()
        return data

    cases = {"sample_inputs": (sample_inputs, "weights_only=False"), "graph": (graph_call, "torch.os.system"),
             "opaque": (opaque, "pickled Python object")}
    for key, (edit, message) in cases.items():
        _rewrite(tmp_path / "ok.pt2", tmp_path / f"{key}.pt2", edit)
        with pytest.raises(UntrustedProgram, match=message):
            load_encoder(tmp_path / f"{key}.pt2")
    with zipfile.ZipFile(tmp_path / "ok.pt2", "a") as zf:
        root = zf.namelist()[0].split("/")[0]
        zf.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    with pytest.raises(UntrustedProgram, match="AOTInductor"):
        load_encoder(tmp_path / "ok.pt2")
    assert not (tmp_path / "PWNED_BY_PT2").exists()


def test_export_command_formats_and_torchscript_alias(tmp_path, capsys):
    save_model(tmp_path / "c.pt", make("multi-head"))
    assert main(["export", str(tmp_path / "c.pt"), "--out", str(tmp_path / "e.pt2")]) == 0
    assert is_pt2(tmp_path / "e.pt2")
    assert main(["export", str(tmp_path / "c.pt"), "--format", "safetensors", "--out", str(tmp_path / "st")]) == 0
    assert (tmp_path / "st" / "model.safetensors").is_file()
    assert main(["export", str(tmp_path / "c.pt"), "--torchscript", str(tmp_path / "e.ts")]) == 0
    assert load_encoder(tmp_path / "e.ts")[1]["source"] == "torchscript"
    assert main(["export", str(tmp_path / "c.pt")]) == 2
    assert "--out" in capsys.readouterr().err


def test_messages_for_random_bytes_folders_and_text_npz(tmp_path, capsys):
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "random.pt")
    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "model.pt", make("vae"))
    assert open_model(run).path == run / "model.pt"  # a run folder stands for its model
    (tmp_path / "empty").mkdir()
    (tmp_path / "codes.npz").write_text("these are not codes\n")
    for model, message in ((tmp_path / "empty", "is a directory"), (tmp_path / "codes.npz", "not an npz archive"),
                           (tmp_path / "random.pt", "not a checkpoint")):
        assert main(["evaluate", "--model", str(model), "--dataset", "dsprites-procedural", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and str(model) in err and len(err.strip().splitlines()) == 1
