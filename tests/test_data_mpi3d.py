import numpy as np
import pytest

from disentbench.cli import main
from disentbench.data import get_dataset, list_datasets
from disentbench.data import official
from disentbench.data.manifest import load_manifest
from disentbench.data.official import ArrayDataset
from disentbench.data.procedural import mpi3d as m

OFFICIAL_SHAPE = (6, 6, 2, 3, 3, 40, 40)  # the README's images.reshape([6, 6, 2, 3, 3, 40, 40, 64, 64, 3])
COLOR, SHAPE, SIZE, CAMERA, BACKGROUND, HORIZONTAL, VERTICAL = range(7)


@pytest.fixture(scope="module")
def ds():
    return get_dataset("mpi3d-procedural")


def _changed(ds, base, factor, value):
    other = base.copy()
    other[:, factor] = value
    return ds.images_for_classes(base).astype(int), ds.images_for_classes(other).astype(int)


def test_grid_names_and_dtype_match_the_official_loader(ds):
    space = official._entries()["mpi3d_toy"].space()
    assert ds.factor_space == space
    assert [f["name"] for f in load_manifest("mpi3d_toy").factors] == list(space.names)
    assert len(ds) == 1_036_800 and ds.channels == 3 and ds.pixel_max == 255
    imgs = ds.images([0, 1, len(ds) - 1])
    assert imgs.shape == (3, 64, 64, 3) and imgs.dtype == np.uint8
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["mpi3d-procedural"]["kind"] == "procedural"
    assert rows["mpi3d-procedural"]["factors"] == rows["mpi3d_toy"]["factors"]


def test_index_layout_matches_an_official_layout_array(ds, tmp_path):
    """An array in the official file's layout holding our renders reads back like the procedural dataset."""
    idx = np.random.default_rng(0).integers(0, len(ds), 40)
    array = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.uint8, shape=(len(ds), 64, 64, 3))
    array[idx] = ds.images(idx)  # a sparse file: only these rows use disk
    loader = ArrayDataset("mpi3d_toy", "1", official._entries()["mpi3d_toy"].space(), array, 3)
    np.testing.assert_array_equal(loader.images(idx), ds.images(idx))
    classes = ds.factor_space.index_to_classes(idx)
    np.testing.assert_array_equal(classes, np.stack(np.unravel_index(idx, OFFICIAL_SHAPE), axis=1))
    grid = array.reshape(*OFFICIAL_SHAPE, 64, 64, 3)
    np.testing.assert_array_equal(grid[tuple(classes.T)], ds.images_for_classes(classes))
    np.testing.assert_array_equal(loader.images_for_classes(classes), ds.images_for_classes(classes))


def test_deterministic_and_batch_independent(ds):
    idx = np.random.default_rng(1).integers(0, len(ds), 300)
    batch = ds.images(idx)
    np.testing.assert_array_equal(batch, get_dataset("mpi3d-procedural").images(idx))
    for i in (0, 17, 299):
        np.testing.assert_array_equal(batch[i : i + 1], ds.images(idx[i : i + 1]))


@pytest.mark.parametrize("factor", range(7))
def test_each_factor_changes_the_image(ds, factor):
    space = ds.factor_space
    base = space.sample_classes(30, 2)
    a, b = _changed(ds, base, factor, (base[:, factor] + 1) % space.sizes[factor])
    assert (a != b).any(axis=(1, 2, 3)).all()


def test_background_colour_changes_only_the_ring(ds):
    base = ds.factor_space.sample_classes(30, 3)
    a, b = _changed(ds, base, BACKGROUND, (base[:, BACKGROUND] + 1) % 3)
    scene = m._scene()
    for k, img_a, img_b in zip(base[:, CAMERA], a, b):
        diff = (img_a != img_b).any(axis=-1)
        ring = (scene["backgrounds"][k, 0] != scene["backgrounds"][k, 1]).any(axis=-1)
        assert diff.any() and not (diff & ~ring).any()  # only ring pixels change
    # the arm and object stay: pixels far from the ring colour (object, robot) are identical
    object_pixels = (np.abs(a - np.asarray(m.FLOOR_RGB)).sum(-1) > 60) & (a == b).all(-1)
    assert object_pixels.sum(axis=(1, 2)).min() > 20


def _arm_box_mask(classes):
    """Pixels (64, 64) inside the boxes of the rod and of the object drawn for one row of factor classes."""
    c, scene = classes[None], m._scene()
    arm, k = m._arm(c), c[:, CAMERA]
    mask = np.zeros((64, 64), bool)
    for lo, hi in (m._object_box(c, k, arm, scene), m._pixel_box([arm["joint"], arm["tip"]], k, scene, 1.1)):
        (x0, y0), (x1, y1) = np.floor(lo[0]).astype(int).clip(0, 63), np.floor(hi[0]).astype(int).clip(0, 63)
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


@pytest.mark.parametrize("factor", [COLOR, SHAPE, SIZE, HORIZONTAL, VERTICAL])
def test_object_and_arm_factors_change_only_arm_and_object_pixels(ds, factor):
    """Changed pixels lie in the rod's and the object's boxes before or after the change; the rest stays."""
    base = ds.factor_space.sample_classes(20, 5 + factor)
    other = base.copy()
    other[:, factor] = (base[:, factor] + 7) % ds.factor_space.sizes[factor]
    a, b = ds.images_for_classes(base), ds.images_for_classes(other)
    for img_a, img_b, before, after in zip(a, b, base, other):
        diff = (img_a != img_b).any(axis=-1)
        assert diff.any() and not (diff & ~(_arm_box_mask(before) | _arm_box_mask(after))).any()
    if factor == COLOR:  # the rod is grey whatever the object's colour: only the object's box changes
        for img_a, img_b, classes in zip(a, b, base):
            lo, hi = m._object_box(classes[None], classes[None, CAMERA], m._arm(classes[None]), m._scene())
            rows, cols = np.nonzero((img_a != img_b).any(axis=-1))
            assert rows.min() >= np.floor(lo[0, 1]) and rows.max() <= np.floor(hi[0, 1])
            assert cols.min() >= np.floor(lo[0, 0]) and cols.max() <= np.floor(hi[0, 0])


def test_camera_height_changes_the_whole_scene(ds):
    base = ds.factor_space.sample_classes(10, 6)
    base[:, CAMERA] = 0
    a, b = _changed(ds, base, CAMERA, 2)
    assert ((a != b).any(axis=-1).sum(axis=(1, 2)) > 300).all()


def test_extreme_horizontal_axis_values_differ(ds):
    base = ds.factor_space.sample_classes(50, 7)
    base[:, HORIZONTAL] = 0
    a, b = _changed(ds, base, HORIZONTAL, 39)
    assert ((a != b).any(axis=-1).sum(axis=(1, 2)) > 20).all()


def test_windows_hold_every_object_and_rod():
    """Over every arm pose, shape, size and camera the object's box fits the largest window, the rod's box its."""
    cl = np.array([[0, s, z, k, 0, h, v] for s in range(6) for z in range(2) for k in range(3)
                   for h in range(0, 40, 3) for v in range(0, 40, 3)])
    arm, scene = m._arm(cl), m._scene()
    lo, hi = m._object_box(cl, cl[:, CAMERA], arm, scene)
    assert (np.floor(hi) - np.floor(lo) + 1).max() <= max(m.OBJECT_WINDOWS)
    lo, hi = m._pixel_box([arm["joint"], arm["tip"]], cl[:, CAMERA], scene, m.ROD_HALF_WIDTH_PX + 1.0)
    assert (np.floor(hi) - np.floor(lo) + 1).max() <= m.ROD_WINDOW


def test_render_cache_matches_fresh_renders(ds, tmp_path):
    cached = get_dataset("mpi3d-procedural", cache=True, cache_dir=tmp_path)
    idx = np.array([5, 1_000_000, 5])
    np.testing.assert_array_equal(cached.images(idx), ds.images(idx))
    assert int(np.load(tmp_path / f"mpi3d-procedural-v{ds.version}" / "rendered.npy").sum()) == 2


def test_data_show_and_info(tmp_path, capsys):
    from matplotlib import image as mpimg

    out = tmp_path / "grid.png"
    assert main(["data", "show", "mpi3d-procedural", "--out", str(out)]) == 0
    img = mpimg.imread(out)
    assert img.shape[:2] == (7 * 64, 10 * 64)  # one row per factor
    assert "rows = object_color, object_shape, object_size, camera_height" in capsys.readouterr().out
    assert main(["data", "info", "mpi3d-procedural"]) == 0
    assert "horizontal_axis" in capsys.readouterr().out
