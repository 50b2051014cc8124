import numpy as np
import pytest

from disentbench.data import get_dataset, list_datasets
from disentbench.data.procedural.dsprites import render_dsprites
from disentbench.data.spaces import dsprites_space, shapes3d_space


@pytest.fixture(scope="module")
def dsprites():
    return get_dataset("dsprites-procedural")


@pytest.fixture(scope="module")
def shapes3d():
    return get_dataset("shapes3d-procedural")


def _centre_x(images):
    img = images[..., 0].astype(np.float64)
    cols = np.arange(img.shape[2])
    return (img.sum(axis=1) * cols).sum(axis=1) / img.sum(axis=(1, 2))


def test_dsprites_grid_and_dtype(dsprites):
    assert dsprites.factor_space == dsprites_space()
    assert len(dsprites) == 737280
    imgs = dsprites.images([0, 1, 737279])
    assert imgs.shape == (3, 64, 64, 1) and imgs.dtype == np.uint8
    assert set(np.unique(imgs)) <= {0, 1}
    assert (imgs.sum(axis=(1, 2, 3)) > 0).all()


def test_dsprites_deterministic_and_batch_independent(dsprites):
    idx = np.random.default_rng(0).integers(0, len(dsprites), 300)
    batch = dsprites.images(idx)
    np.testing.assert_array_equal(batch, dsprites.images(idx))
    np.testing.assert_array_equal(batch[17:18], dsprites.images(idx[17:18]))


@pytest.mark.parametrize("factor", range(5))
def test_dsprites_each_factor_changes_image(dsprites, factor):
    space = dsprites.factor_space
    base = space.sample_classes(40, 3)
    other = base.copy()
    # orientation 0 and 2*pi draw the same sprite, and squares repeat every quarter turn: step by 3
    step = 3 if space.names[factor] == "orientation" else 1
    other[:, factor] = (base[:, factor] + step) % space.sizes[factor]
    a, b = dsprites.images_for_classes(base), dsprites.images_for_classes(other)
    assert (a != b).any(axis=(1, 2, 3)).all()


def test_dsprites_posx_moves_mass_centre_monotonically(dsprites):
    for shape in range(3):
        classes = np.array([[shape, 3, 7, x, 16] for x in range(32)])
        cx = _centre_x(dsprites.images_for_classes(classes))
        assert (np.diff(cx) > 0).all()
        assert cx[-1] - cx[0] > 30


def test_dsprites_posy_moves_mass_centre_down(dsprites):
    classes = np.array([[1, 3, 0, 16, y] for y in range(32)])
    img = dsprites.images_for_classes(classes)[..., 0].astype(float)
    cy = (img.sum(axis=2) * np.arange(64)).sum(axis=1) / img.sum(axis=(1, 2))
    assert (np.diff(cy) > 0).all()


def test_dsprites_scale_increases_mass(dsprites):
    for shape in range(3):
        mass = dsprites.images_for_classes(np.array([[shape, s, 5, 16, 16] for s in range(6)])).sum(axis=(1, 2, 3))
        assert (np.diff(mass) > 0).all()


def test_dsprites_shapes_are_never_clipped():
    classes = np.array([[s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)])
    imgs = render_dsprites(classes, dsprites_space())[..., 0]
    border = imgs[:, 0].sum() + imgs[:, -1].sum() + imgs[:, :, 0].sum() + imgs[:, :, -1].sum()
    assert border == 0
    assert (imgs.sum(axis=(1, 2)) > 100).all()


def test_shapes3d_grid_and_determinism(shapes3d):
    assert shapes3d.factor_space == shapes3d_space()
    idx = np.random.default_rng(1).integers(0, len(shapes3d), 50)
    a = shapes3d.images(idx)
    assert a.shape == (50, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, shapes3d.images(idx))
    np.testing.assert_array_equal(a[:1], get_dataset("shapes3d-procedural").images(idx[:1]))


@pytest.mark.parametrize("factor", range(6))
def test_shapes3d_each_factor_changes_image(shapes3d, factor):
    space = shapes3d.factor_space
    base = space.sample_classes(12, 5)
    other = base.copy()
    other[:, factor] = (base[:, factor] + 1) % space.sizes[factor]
    a, b = shapes3d.images_for_classes(base), shapes3d.images_for_classes(other)
    assert (a != b).any(axis=(1, 2, 3)).all()


def test_shapes3d_scale_grows_object(shapes3d):
    # object hue 0 (red) on floor/wall hue 0.5 (cyan): count red-dominated pixels
    classes = np.array([[5, 5, 0, s, 2, 7] for s in range(8)])
    img = shapes3d.images_for_classes(classes).astype(int)
    red = ((img[..., 0] > 2 * img[..., 1] + 10) & (img[..., 0] > 2 * img[..., 2] + 10)).sum(axis=(1, 2))
    assert (np.diff(red) > 0).all()


def test_out_of_range_index_is_rejected(dsprites, shapes3d):
    with pytest.raises(IndexError):
        dsprites.images([len(dsprites)])
    with pytest.raises(IndexError):
        shapes3d.images([-1])
    with pytest.raises(ValueError, match="out of range"):
        dsprites.images_for_classes(np.array([[3, 0, 0, 0, 0]]))


def test_registry_lists_procedural_datasets():
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["dsprites-procedural"]["kind"] == "procedural"
    assert rows["dsprites-procedural"]["factors"] == {"shape": 3, "scale": 6, "orientation": 40, "posX": 32, "posY": 32}
    assert rows["shapes3d-procedural"]["images"] == 480000
    with pytest.raises(KeyError, match="unknown dataset"):
        get_dataset("dsprite")


def test_render_cache_is_lazy_and_matches_fresh_renders(tmp_path, monkeypatch):
    from disentbench.data.procedural import dsprites as module

    cached = get_dataset("dsprites-procedural", cache=True, cache_dir=tmp_path)
    idx = np.array([7, 700_000, 7, 123_456])
    first = cached.images(idx)
    np.testing.assert_array_equal(first, get_dataset("dsprites-procedural").images(idx))
    directory = tmp_path / f"dsprites-procedural-v{cached.version}"
    assert int(np.load(directory / "rendered.npy").sum()) == 3
    assert (directory / "images.npy").stat().st_blocks * 512 < 10_000_000  # sparse: only rendered rows use disk

    def no_render(*args, **kwargs):
        raise AssertionError("cached images must not be rendered again")

    monkeypatch.setattr(module, "render_dsprites", no_render)
    again = get_dataset("dsprites-procedural", cache=True, cache_dir=tmp_path)  # a second reader
    np.testing.assert_array_equal(again.images(idx[::-1]), first[::-1])


def test_render_cache_rejects_a_foreign_file(tmp_path):
    from disentbench.data.cache import DataError
    from disentbench.data.procedural.shapes3d import ProceduralShapes3D

    directory = tmp_path / f"shapes3d-procedural-v{ProceduralShapes3D.version}"
    directory.mkdir()
    np.save(directory / "images.npy", np.zeros((3, 64, 64, 3), np.uint8))
    with pytest.raises(DataError, match="delete it"):
        get_dataset("shapes3d-procedural", cache=True, cache_dir=tmp_path)


def test_pixel_max_and_float_images(dsprites, shapes3d):
    assert dsprites.pixel_max == 1 and shapes3d.pixel_max == 255
    for ds in (dsprites, shapes3d):
        x = ds.images_float(np.arange(0, len(ds), len(ds) // 50))
        assert x.dtype == np.float32 and x.min() == 0.0 and 0.9 < x.max() <= 1.0
        np.testing.assert_array_equal(x * ds.pixel_max, ds.images(np.arange(0, len(ds), len(ds) // 50)))


@pytest.mark.slow
def test_dsprites_full_grid_every_sprite_visible_and_inside():
    space = dsprites_space()
    for start in range(0, space.n_points, 65536):
        imgs = render_dsprites(space.index_to_classes(np.arange(start, min(start + 65536, space.n_points))))[..., 0]
        assert (imgs.sum(axis=(1, 2)) >= 50).all()
        assert not (imgs[:, 0].any() or imgs[:, -1].any() or imgs[:, :, 0].any() or imgs[:, :, -1].any())


@pytest.mark.slow
def test_shapes3d_every_geometry_shows_object_floor_wall_and_sky():
    from disentbench.data.procedural.shapes3d import FLOOR, OBJECT, SKY, WALL, ProceduralShapes3D

    ds = ProceduralShapes3D()
    for scale in range(8):
        for shape in range(4):
            for orient in range(15):
                coverage = ds._weights((scale, shape, orient)) > 0
                counts = coverage.sum(axis=0)
                assert counts[OBJECT] > 40 and counts[FLOOR] > 400 and counts[WALL] > 400 and counts[SKY] > 100


@pytest.mark.parametrize("shape", range(4))
def test_shapes3d_bounding_shortcut_matches_brute_force(shape):
    """Intersecting only rays near the object (camera and shadow rays) gives the full ray-cast's weights."""
    import disentbench.data.procedural.shapes3d as m

    for scale, azimuth in ((0.75, -30.0), (1.25, 12.857142857142858)):
        o, d, t_bg, label, shade = m._room(azimuth)
        t_obj, normal = m.object_hit(o, d, shape, scale)
        on = t_obj < t_bg
        label = np.where(on, m.OBJECT, label)
        shade = np.where(on, m.AMBIENT + (1 - m.AMBIENT) * np.maximum(normal @ m.LIGHT, 0), shade)
        room = (label == m.FLOOR) | (label == m.WALL)
        p = o + np.where(room, t_bg, 0)[..., None] * d
        blocked = room & np.isfinite(m.object_hit(p, np.broadcast_to(m.LIGHT, p.shape), shape, scale)[0])
        shade = np.where(blocked, m.SHADOW, shade)
        brute = np.stack([np.where(label == k, shade, 0).mean(1) for k in range(4)], 1).astype(np.float32)
        np.testing.assert_array_equal(m.coverage_weights(shape, scale, azimuth), brute)
        assert blocked.any()  # the shadow is really there
