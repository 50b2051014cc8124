import pytest

from disentbench.cli import main


def test_data_list(capsys, tmp_path):
    assert main(["data", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("dsprites-procedural", "shapes3d-procedural", "dsprites", "shapes3d", "mpi3d_real", "smallnorb", "cars3d"):
        assert f"\n{name} " in out
    assert "floor_hue=10" in out and "268 MB" in out


def test_data_info_official(capsys, tmp_path):
    assert main(["data", "info", "dsprites", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[missing] dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5 (28,024,106 bytes" in out
    assert "md5 7da33b31b13a06f4b04a70402ce90c2e" in out and "any one of them" in out


def test_data_show_writes_png(tmp_path, capsys):
    from matplotlib import image as mpimg

    out = tmp_path / "grid.png"
    assert main(["data", "show", "dsprites-procedural", "--out", str(out), "--columns", "8"]) == 0
    img = mpimg.imread(out)
    assert img.shape[:2] == (5 * 64, 8 * 64)  # one row per factor
    assert img[..., :3].max() > 0.9
    assert "rows = shape, scale, orientation, posX, posY" in capsys.readouterr().out


def test_data_fetch_offline_names_the_file(capsys, tmp_path):
    assert main(["data", "fetch", "shapes3d", "--offline", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "3dshapes.h5 (267,573,662 bytes, sha256 0a0f6ed98baff276" in err
    assert str(tmp_path / "shapes3d" / "3dshapes.h5") in err


def test_data_verify_rejects_wrong_file_under_the_right_name(capsys, tmp_path):
    d = tmp_path / "shapes3d"
    d.mkdir()
    (d / "3dshapes.h5").write_bytes(b"not the dataset")
    assert main(["data", "verify", "shapes3d", "--cache-dir", str(tmp_path)]) == 2
    assert "has 15 bytes, expected 3dshapes.h5 (267,573,662 bytes" in capsys.readouterr().err


def test_data_env_cache_dir(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DISENTBENCH_DATA", str(tmp_path / "env-cache"))
    assert main(["data", "info", "shapes3d"]) == 0
    assert str(tmp_path / "env-cache" / "shapes3d") in capsys.readouterr().out


def test_unknown_dataset(capsys):
    assert main(["data", "info", "dsprite"]) == 2
    assert "unknown dataset 'dsprite'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dsprites-procedural", "shapes3d-procedural"])
def test_fetch_and_verify_procedural_are_no_ops(name, capsys):
    assert main(["data", "fetch", name]) == 0
    assert main(["data", "verify", name]) == 0
    assert "procedural" in capsys.readouterr().out
