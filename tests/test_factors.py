import numpy as np
import pytest

from disentbench.factors import FactorSpace

DSPRITES_SIZES = (3, 6, 40, 32, 32)


def dsprites_like():
    return FactorSpace(("shape", "scale", "orientation", "posX", "posY"), DSPRITES_SIZES)


def test_index_classes_round_trip_full_grid():
    space = FactorSpace(("a", "b", "c"), (3, 4, 5))
    classes = space.all_classes()
    assert classes.shape == (60, 3)
    np.testing.assert_array_equal(space.classes_to_index(classes), np.arange(60))
    # row-major: the last factor varies fastest
    np.testing.assert_array_equal(classes[:6, 2], [0, 1, 2, 3, 4, 0])
    assert classes[5].tolist() == [0, 1, 0]


def test_round_trip_random_indices_large_grid():
    space = dsprites_like()
    assert space.n_points == 737280
    idx = np.random.default_rng(0).integers(0, space.n_points, 1000)
    np.testing.assert_array_equal(space.classes_to_index(space.index_to_classes(idx)), idx)


def test_values_and_normalisation():
    space = FactorSpace(("scale", "flag"), (3, 1), values=([0.5, 0.75, 1.0], [7.0]))
    classes = np.array([[0, 0], [2, 0]])
    np.testing.assert_allclose(space.classes_to_values(classes), [[0.5, 7.0], [1.0, 7.0]])
    np.testing.assert_allclose(space.normalised(classes), [[0.0, 0.0], [1.0, 0.0]])


def test_sampling_is_seeded_and_fixes_factor():
    space = dsprites_like()
    a = space.sample_with_fixed(64, 2, 17, 123)
    b = space.sample_with_fixed(64, 2, 17, 123)
    np.testing.assert_array_equal(a, b)
    assert (a[:, 2] == 17).all()
    assert len(np.unique(a[:, 3])) > 1
    space.check_classes(a)


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.array([[3, 0, 0, 0, 0]]), ValueError),
        (np.array([[0, 0, 0, 0]]), ValueError),
        (np.array([[0, -1, 0, 0, 0]]), ValueError),
    ],
)
def test_bad_classes_rejected(bad, error):
    with pytest.raises(error):
        dsprites_like().classes_to_index(bad)


def test_bad_indices_rejected():
    space = dsprites_like()
    with pytest.raises(IndexError):
        space.index_to_classes([space.n_points])
    with pytest.raises(ValueError):
        space.index_to_classes([0.5])


def test_serialisation_round_trip_and_validation():
    space = FactorSpace(("a", "b"), (2, 3), values=([0.0, 1.0], [1.0, 2.0, 4.0]))
    assert FactorSpace.from_dict(space.to_dict()) == space
    with pytest.raises(ValueError):
        FactorSpace(("a", "a"), (2, 2))
    with pytest.raises(ValueError):
        FactorSpace(("a",), (2,), values=([1.0, 2.0, 3.0],))
