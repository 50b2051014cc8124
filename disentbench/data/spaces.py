"""Factor grids of the supported datasets, with the officially published value sets.

Sources: the dSprites README (Matthey et al. 2017), the 3dshapes README (Burgess & Kim 2018),
the MPI3D README (Gondal et al. 2019), and disentanglement_lib's loaders for smallNORB and Cars3D
(Locatello et al. 2019). The manifests in ``data_manifests/`` repeat these values; a test checks that
both agree.
"""

from __future__ import annotations

import numpy as np

from disentbench.factors import FactorSpace

DSPRITES_SHAPES = ("square", "ellipse", "heart")
SHAPES3D_SHAPES = ("cube", "cylinder", "sphere", "capsule")


def dsprites_space() -> FactorSpace:
    """dSprites without the constant colour factor: shape 3, scale 6, orientation 40, posX 32, posY 32."""
    return FactorSpace(
        ("shape", "scale", "orientation", "posX", "posY"),
        (3, 6, 40, 32, 32),
        (
            np.array([1.0, 2.0, 3.0]),
            np.linspace(0.5, 1.0, 6),
            np.linspace(0.0, 2.0 * np.pi, 40),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        ),
    )


def shapes3d_space() -> FactorSpace:
    """3dshapes: hues 10 values in [0, 1), scale 8 in [0.75, 1.25], shape 4, orientation 15 in [-30, 30] degrees."""
    hues = np.linspace(0.0, 1.0, 10, endpoint=False)
    return FactorSpace(
        ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
        (10, 10, 10, 8, 4, 15),
        (hues, hues, hues, np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30.0, 30.0, 15)),
    )


def mpi3d_space() -> FactorSpace:
    """MPI3D (toy / realistic / real): 6 * 6 * 2 * 3 * 3 * 40 * 40 = 1,036,800 images, values are class indices."""
    return FactorSpace(
        (
            "object_color",
            "object_shape",
            "object_size",
            "camera_height",
            "background_color",
            "horizontal_axis",
            "vertical_axis",
        ),
        (6, 6, 2, 3, 3, 40, 40),
    )


def smallnorb_space() -> FactorSpace:
    """smallNORB as in disentanglement_lib: category 5, elevation 9, azimuth 18, lighting 6 (instance dropped)."""
    return FactorSpace(
        ("category", "elevation", "azimuth", "lighting"),
        (5, 9, 18, 6),
        (
            np.arange(5.0),
            np.arange(30.0, 71.0, 5.0),  # elevations 30..70 degrees in steps of 5
            np.arange(0.0, 360.0, 20.0),  # azimuths 0..340 degrees in steps of 20
            np.arange(6.0),
        ),
    )


def cars3d_space() -> FactorSpace:
    """Cars3D as in disentanglement_lib: elevation 4, azimuth 24, object 183 (class indices)."""
    return FactorSpace(("elevation", "azimuth", "object_type"), (4, 24, 183))
