"""Offline renderers with the official factor grids; each has its own dataset name."""

from disentbench.data.procedural.dsprites import ProceduralDSprites, render_dsprites
from disentbench.data.procedural.mpi3d import ProceduralMPI3D, render_mpi3d
from disentbench.data.procedural.shapes3d import ProceduralShapes3D

__all__ = ["ProceduralDSprites", "ProceduralMPI3D", "ProceduralShapes3D", "render_dsprites", "render_mpi3d"]
