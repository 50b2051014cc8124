import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import replace

import h5py
import numpy as np
import pytest

from disentbench.data import official
from disentbench.data.cache import DataError, DatasetUnavailable
from disentbench.data.manifest import load_manifest
from disentbench.data.official import OfficialEntry, open_official, verify_official
from disentbench.data.registry import get_entry
from disentbench.factors import FactorSpace

SMALL = {
    "dsprites": FactorSpace(("shape", "scale", "orientation", "posX", "posY"), (3, 2, 2, 2, 3)),
    "shapes3d": FactorSpace(("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"), (2, 1, 2, 2, 2, 3),
                            (np.array([0.0, 0.1]), [0.0], [0.0, 0.1], [0.75, 1.25], [0.0, 1.0], [-30.0, 0.0, 30.0])),
    "mpi3d_toy": FactorSpace(("a", "b"), (3, 4)),
    "smallnorb": FactorSpace(("category", "elevation", "azimuth", "lighting"), (2, 2, 3, 2)),
    "cars3d": FactorSpace(("elevation", "azimuth", "object_type"), (2, 3, 2)),
}


@pytest.fixture
def small_grids(monkeypatch):
    """Shrink the factor grids so that fixtures in the official layouts stay tiny."""
    real = official._entries()
    patched = {k: OfficialEntry(lambda s=SMALL.get(k): s, e.channels, e.preparer, e.output) for k, e in real.items()}
    monkeypatch.setattr(official, "_entries", lambda: patched)


def _with_file(name, path, algo="sha256"):
    """The shipped manifest with the fixture's size and checksum (production manifests are untouched)."""
    manifest = load_manifest(name)
    data = path.read_bytes()
    files = tuple(
        replace(f, size=len(data), checksum=f"{algo}:" + hashlib.new(algo, data).hexdigest()) if f.name == path.name else f
        for f in manifest.files
    )
    return replace(manifest, files=files)


def _rng_images(n, *shape):
    return np.random.default_rng(n).integers(0, 256, (n, *shape), dtype=np.uint8)


# -- dSprites -----------------------------------------------------------------------------------------
def _dsprites_arrays(space):
    classes = np.column_stack([np.zeros(space.n_points, np.int64), space.all_classes()])
    imgs = (np.random.default_rng(1).random((space.n_points, 64, 64)) < 0.3).astype(np.uint8)
    return imgs, classes


def test_dsprites_npz_official_layout(small_grids, tmp_path):
    space = SMALL["dsprites"]
    imgs, classes = _dsprites_arrays(space)
    d = tmp_path / "dsprites"
    d.mkdir()
    path = d / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    np.savez_compressed(path, imgs=imgs, latents_values=classes.astype(float), latents_classes=classes,
                        metadata=np.array({"date": "fixture"}, dtype=object))
    manifest = _with_file("dsprites", path, "md5")
    ds = open_official("dsprites", cache_dir=tmp_path, manifest=manifest, progress=False)
    idx = np.array([5, 0, space.n_points - 1, 5])
    np.testing.assert_array_equal(ds.images(idx)[..., 0], imgs[idx])
    assert ds.images(idx).shape == (4, 64, 64, 1) and ds.version == "1" and ds.pixel_max == 1
    assert (d / "dsprites_packed.npy").is_file() and not (d / "dsprites_packed.npy.part").exists()
    path.unlink()  # the verified conversion is enough afterwards
    again = open_official("dsprites", cache_dir=tmp_path, manifest=manifest)
    np.testing.assert_array_equal(again.images(idx)[..., 0], imgs[idx])
    with pytest.raises(IndexError):
        again.images([space.n_points])


def test_dsprites_hdf5_official_layout(small_grids, tmp_path):
    space = SMALL["dsprites"]
    imgs, classes = _dsprites_arrays(space)
    d = tmp_path / "dsprites"
    d.mkdir()
    path = d / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imgs", data=imgs, compression="gzip", chunks=(4, 64, 64))
        f.create_dataset("latents/classes", data=classes)
        f.create_dataset("latents/values", data=classes.astype(float))
    ds = open_official("dsprites", cache_dir=tmp_path, manifest=_with_file("dsprites", path), progress=False)
    np.testing.assert_array_equal(ds.images(np.arange(space.n_points))[..., 0], imgs)
    assert any("ok" in line for line in verify_official("dsprites", cache_dir=tmp_path,
                                                         manifest=_with_file("dsprites", path)))


def test_dsprites_wrong_order_labels_rejected(small_grids, tmp_path):
    space = SMALL["dsprites"]
    imgs, classes = _dsprites_arrays(space)
    d = tmp_path / "dsprites"
    d.mkdir()
    path = d / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    np.savez(path, imgs=imgs, latents_values=classes.astype(float), latents_classes=classes[::-1])
    with pytest.raises(DataError, match="row-major"):
        open_official("dsprites", cache_dir=tmp_path, manifest=_with_file("dsprites", path, "md5"), progress=False)
    assert not (d / "dsprites_packed.npy").exists()


# -- Shapes3D -----------------------------------------------------------------------------------------
def _shapes3d_file(path, space, key="images"):
    imgs = _rng_images(space.n_points, 64, 64, 3)
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=imgs, chunks=(1, 64, 64, 3))
        f.create_dataset("labels", data=space.classes_to_values(space.all_classes()))
    return imgs


def test_shapes3d_h5_official_layout_and_resumed_conversion(small_grids, tmp_path, monkeypatch):
    space = SMALL["shapes3d"]
    d = tmp_path / "shapes3d"
    d.mkdir()
    path = d / "3dshapes.h5"
    imgs = _shapes3d_file(path, space)
    manifest = _with_file("shapes3d", path)
    monkeypatch.setattr("disentbench.data.prepare.ROWS_PER_BLOCK", 5)
    # interrupt the conversion after two blocks: the .part file and its progress record stay
    from disentbench.data import convert

    real_write = convert.atomic_write_text
    calls = {"n": 0}

    def failing_write(p, text):
        real_write(p, text)
        if p.name.endswith(".part.json") and json.loads(text)["rows"] >= 10:
            calls["n"] += 1
            raise KeyboardInterrupt

    monkeypatch.setattr(convert, "atomic_write_text", failing_write)
    with pytest.raises(KeyboardInterrupt):
        open_official("shapes3d", cache_dir=tmp_path, manifest=manifest, progress=False)
    assert not (d / "shapes3d_images.npy").exists()
    assert json.loads((d / "shapes3d_images.npy.part.json").read_text())["rows"] == 10
    monkeypatch.setattr(convert, "atomic_write_text", real_write)
    ds = open_official("shapes3d", cache_dir=tmp_path, manifest=manifest, progress=False)
    np.testing.assert_array_equal(ds.images(np.arange(space.n_points)), imgs)
    assert not (d / "shapes3d_images.npy.part").exists()


def test_shapes3d_full_shape_file_with_wrong_key(tmp_path):
    d = tmp_path / "shapes3d"
    d.mkdir()
    path = d / "3dshapes.h5"
    with h5py.File(path, "w") as f:  # full official shapes, no chunk written: a few KB on disk
        f.create_dataset("imgs", shape=(480000, 64, 64, 3), dtype=np.uint8, chunks=(1, 64, 64, 3))
        f.create_dataset("labels", shape=(480000, 6), dtype=np.float64, chunks=(1000, 6))
    assert path.stat().st_size < 1_000_000
    with pytest.raises(DataError, match="lacks 'images'"):
        open_official("shapes3d", cache_dir=tmp_path, manifest=_with_file("shapes3d", path), progress=False)


def test_shapes3d_full_shape_file_with_wrong_shape(tmp_path):
    d = tmp_path / "shapes3d"
    d.mkdir()
    path = d / "3dshapes.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", shape=(480000, 64, 64, 1), dtype=np.uint8, chunks=(1, 64, 64, 1))
        f.create_dataset("labels", shape=(480000, 6), dtype=np.float64, chunks=(1000, 6))
    with pytest.raises(DataError, match=r"expected \(480000, 64, 64, 3\) uint8"):
        open_official("shapes3d", cache_dir=tmp_path, manifest=_with_file("shapes3d", path), progress=False)


def test_missing_official_file_error_names_file_and_place(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        open_official("shapes3d", cache_dir=tmp_path)
    msg = str(err.value)
    assert "3dshapes.h5" in msg and "267,573,662 bytes" in msg and "0a0f6ed98baff276" in msg
    assert str(tmp_path / "shapes3d" / "3dshapes.h5") in msg


# -- MPI3D --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_mpi3d_npz_stored_and_compressed(small_grids, tmp_path, compressed):
    space = SMALL["mpi3d_toy"]
    d = tmp_path / "mpi3d_toy"
    d.mkdir()
    path = d / "mpi3d_toy.npz"
    imgs = _rng_images(space.n_points, 64, 64, 3)
    (np.savez_compressed if compressed else np.savez)(path, images=imgs)
    ds = open_official("mpi3d_toy", cache_dir=tmp_path, manifest=_with_file("mpi3d_toy", path, "md5"), progress=False)
    idx = np.array([11, 3, 0])
    np.testing.assert_array_equal(ds.images(idx), imgs[idx])
    assert ds.pixel_max == 255
    assert (d / "mpi3d_toy_images.npy").exists() == compressed


def test_mpi3d_wrong_key(small_grids, tmp_path):
    d = tmp_path / "mpi3d_toy"
    d.mkdir()
    path = d / "mpi3d_toy.npz"
    np.savez(path, imgs=_rng_images(12, 64, 64, 3))
    with pytest.raises(DataError, match="no array 'images'"):
        open_official("mpi3d_toy", cache_dir=tmp_path, manifest=_with_file("mpi3d_toy", path, "md5"))


# -- smallNORB ----------------------------------------------------------------------------------------
def _norb_matrix(array, magic):
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([magic, array.ndim, *dims], dtype="<i4").tobytes()
    return gzip.compress(header + array.astype(array.dtype.newbyteorder("<")).tobytes())


def test_smallnorb_binary_format(small_grids, tmp_path):
    space = SMALL["smallnorb"]  # category 2, elevation 2, azimuth 3, lighting 2; 2 instances per split
    d = tmp_path / "smallnorb"
    d.mkdir()
    manifest = load_manifest("smallnorb")
    by_split = {}
    for split, instances in (("training", (1, 3)), ("testing", (0, 2))):
        grid = np.stack(np.meshgrid(range(2), instances, range(2), range(3), range(2), indexing="ij"), -1).reshape(-1, 5)
        grid = grid[np.random.default_rng(len(split)).permutation(len(grid))]  # files are not in grid order
        dat = np.zeros((len(grid), 2, 96, 96), np.uint8)
        dat[:, 0] = np.ravel_multi_index(tuple(grid.T), (2, 4, 2, 3, 2))[:, None, None]  # the image encodes its factors
        info = np.column_stack([grid[:, 1], grid[:, 2], grid[:, 3] * 2, grid[:, 4]]).astype(np.int32)
        by_split[split] = (dat, grid[:, 0].astype(np.int32), info)
    files = []
    for spec in manifest.files:
        split = "training" if "training" in spec.name else "testing"
        kind = spec.name.rsplit("-", 1)[1].split(".")[0]
        dat, cat, info = by_split[split]
        blob = {"dat": _norb_matrix(dat, 0x1E3D4C55), "cat": _norb_matrix(cat, 0x1E3D4C54),
                "info": _norb_matrix(info, 0x1E3D4C54)}[kind]
        (d / spec.name).write_bytes(blob)
        files.append(replace(spec, size=len(blob), checksum="md5:" + hashlib.md5(blob).hexdigest()))
    ds = open_official("smallnorb", cache_dir=tmp_path, manifest=replace(manifest, files=tuple(files)), progress=False)
    classes = space.all_classes()
    imgs = ds.images_for_classes(classes)
    assert imgs.shape == (space.n_points, 64, 64, 1)
    code = imgs[:, 32, 32, 0].astype(int)
    cat, inst, elev, azim, light = np.unravel_index(code, (2, 4, 2, 3, 2))
    np.testing.assert_array_equal(np.column_stack([cat, elev, azim, light]), classes)
    assert set(inst) <= {0, 1, 2, 3} and len(set(inst)) > 1


# -- Cars3D -------------------------------------------------------------------------------------------
def test_cars3d_archive(small_grids, tmp_path):
    from scipy.io import savemat

    space = SMALL["cars3d"]  # elevation 2, azimuth 3, object 2
    d = tmp_path / "cars3d"
    d.mkdir()
    path = d / "nips2015-analogy-data.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("data/cars/list.txt", b"car_b_mesh\ncar_a_mesh\n")
        for obj, name in enumerate(("car_b_mesh", "car_a_mesh")):
            im = np.zeros((128, 128, 3, 3, 2), np.uint8)
            for a in range(3):
                for e in range(2):
                    im[..., a, e] = 100 * obj + 10 * e + a
            buf = io.BytesIO()
            savemat(buf, {"im": im, "mask": np.zeros((128, 128, 3, 2), np.uint8)})
            add(f"data/cars/{name}.mat", buf.getvalue())
    ds = open_official("cars3d", cache_dir=tmp_path, manifest=_with_file("cars3d", path, "md5"), progress=False)
    classes = space.all_classes()
    got = ds.images_for_classes(classes)[:, 10, 10, 0].astype(int)
    np.testing.assert_array_equal(got, 100 * classes[:, 2] + 10 * classes[:, 0] + classes[:, 1])


# -- manifests agree with the factor spaces -------------------------------------------------------------
@pytest.mark.parametrize("name", official.OFFICIAL_NAMES)
def test_manifest_factors_match_space(name):
    manifest = load_manifest(name)
    space = get_entry(name).factor_space()
    assert tuple(f["name"] for f in manifest.factors) == space.names
    for f, size in zip(manifest.factors, space.sizes):
        if "size" in f:
            assert f["size"] == size
        if isinstance(f.get("values"), list):
            assert len(f["values"]) == size
    assert all(spec.urls for spec in manifest.files)
    assert all(spec.checksum or spec.note or manifest.note for spec in manifest.files)


def test_stored_npz_zip_layout_is_detected(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("images.npy").compress_type == zipfile.ZIP_STORED
    from disentbench.data.convert import stored_npz_member

    np.testing.assert_array_equal(stored_npz_member(path, "images"), np.arange(24).reshape(2, 3, 4))


def test_damaged_conversion_is_rebuilt(small_grids, tmp_path):
    space = SMALL["mpi3d_toy"]
    d = tmp_path / "mpi3d_toy"
    d.mkdir()
    path = d / "mpi3d_toy.npz"
    imgs = _rng_images(space.n_points, 64, 64, 3)
    np.savez_compressed(path, images=imgs)
    manifest = _with_file("mpi3d_toy", path, "md5")
    open_official("mpi3d_toy", cache_dir=tmp_path, manifest=manifest, progress=False)
    out = d / "mpi3d_toy_images.npy"
    with open(out, "r+b") as fh:  # cut the converted file short, as a full disk or a crash would
        fh.truncate(out.stat().st_size // 2)
    ds = open_official("mpi3d_toy", cache_dir=tmp_path, manifest=manifest, progress=False)
    np.testing.assert_array_equal(ds.images(np.arange(space.n_points)), imgs)


def test_verify_detects_a_changed_source(small_grids, tmp_path):
    from disentbench.data.cache import ChecksumError

    d = tmp_path / "mpi3d_toy"
    d.mkdir()
    path = d / "mpi3d_toy.npz"
    np.savez(path, images=_rng_images(12, 64, 64, 3))
    manifest = _with_file("mpi3d_toy", path, "md5")
    assert verify_official("mpi3d_toy", cache_dir=tmp_path, manifest=manifest)[0].startswith("ok")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="md5"):
        verify_official("mpi3d_toy", cache_dir=tmp_path, manifest=manifest)


def test_conversion_on_a_full_disk_fails_cleanly_and_resumes(small_grids, tmp_path, monkeypatch):
    import errno
    from collections import namedtuple

    from disentbench.data import convert

    space = SMALL["shapes3d"]
    d = tmp_path / "shapes3d"
    d.mkdir()
    path = d / "3dshapes.h5"
    imgs = _shapes3d_file(path, space)
    manifest = _with_file("shapes3d", path)
    usage, real_usage = namedtuple("usage", "total used free"), convert.shutil.disk_usage
    monkeypatch.setattr(convert.shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DataError, match=r"needs 0\.6 MB in .* only 0\.0 MB free"):
        open_official("shapes3d", cache_dir=tmp_path, manifest=manifest, progress=False)
    monkeypatch.setattr(convert.shutil, "disk_usage", real_usage)
    monkeypatch.setattr("disentbench.data.prepare.ROWS_PER_BLOCK", 8)
    real_pwrite, calls = convert.os.pwrite, {"n": 0}

    def pwrite(fd, data, offset):
        calls["n"] += 1
        if calls["n"] == 2:  # the disk fills up during the second block
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(convert.os, "pwrite", pwrite)
    with pytest.raises(DataError, match="No space left on device; free space and run again to resume"):
        open_official("shapes3d", cache_dir=tmp_path, manifest=manifest, progress=False)
    assert not (d / "shapes3d_images.npy").exists()
    assert json.loads((d / "shapes3d_images.npy.part.json").read_text())["rows"] == 8
    ds = open_official("shapes3d", cache_dir=tmp_path, manifest=manifest, progress=False)  # resumes at row 8
    np.testing.assert_array_equal(ds.images(np.arange(space.n_points)), imgs)
    assert calls["n"] == 1 + 1 + (space.n_points - 8 + 7) // 8


def test_hand_placed_file_with_the_right_name_but_wrong_bytes(small_grids, tmp_path):
    from disentbench.data.cache import ChecksumError

    d = tmp_path / "mpi3d_toy"
    d.mkdir()
    path = d / "mpi3d_toy.npz"
    np.savez(path, images=_rng_images(12, 64, 64, 3))
    manifest = _with_file("mpi3d_toy", path, "md5")
    np.savez(path, images=_rng_images(12, 64, 64, 3)[::-1])  # same name and layout, other content
    with pytest.raises(ChecksumError, match="expected mpi3d_toy.npz"):
        open_official("mpi3d_toy", cache_dir=tmp_path, manifest=manifest, progress=False)
    assert not (d / "mpi3d_toy.npz.verified").exists()
