"""One random task network h(z; θ): an MLP over normalised factor values with N(0, 1) parameters.

Seed 004 ("On the relationship between disentanglement and multi-task learning"), section 3.1 and
appendix H: task ``i`` is ``y_i = h(z; θ_i)``, an MLP with 4 hidden layers of 300 tanh units and one
output, every parameter drawn from N(0, 1). With ``a_0 = z_S`` (the factors the task sees)::

    a_l = act(a_{l-1} W_l + b_l)   for l = 1 .. L        (W_l, b_l ~ N(0, 1) i.i.d.)
    y   = a_L w_out + b_out

Arithmetic is float32 (BLAS ``sgemm``), activations are applied in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.special

ACTIVATIONS: dict[str, Callable[[np.ndarray], None]] = {
    "tanh": lambda h: np.tanh(h, out=h),
    "relu": lambda h: np.maximum(h, 0.0, out=h),
    "sigmoid": lambda h: scipy.special.expit(h, out=h),
    "linear": lambda h: None,
}


@dataclass(frozen=True)
class TaskNetwork:
    """Parameters of one task network.

    ``subset`` holds the (sorted) indices of the factors the task sees; ``weights[0]`` has one row per
    seen factor, so unseen factors have no input weight at all and cannot change the output.
    ``weights[l]`` is ``(fan_in, fan_out)`` float32 and ``biases[l]`` is ``(fan_out,)`` float32.
    """

    subset: tuple[int, ...]
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
        if not self.subset:
            raise ValueError("a task must see at least one factor (empty factor subset)")
        if len(self.weights) != len(self.biases) or len(self.weights) < 2:
            raise ValueError("need one bias per weight matrix and at least one hidden layer")
        if self.weights[0].shape[0] != len(self.subset) or self.weights[-1].shape[1] != 1:
            raise ValueError("first weight needs one row per seen factor and the last one output column")
        for w, b, w_next in zip(self.weights, self.biases, self.weights[1:] + (None,)):
            if w.dtype != np.float32 or b.dtype != np.float32 or b.shape != (w.shape[1],):
                raise ValueError("weights and biases must be float32 with matching shapes")
            if w_next is not None and w_next.shape[0] != w.shape[1]:
                raise ValueError("consecutive weight matrices must chain (fan_out == next fan_in)")

    @property
    def hidden_width(self) -> int:
        return int(self.weights[0].shape[1])

    @classmethod
    def draw(
        cls,
        seed_sequence: np.random.SeedSequence,
        n_factors: int,
        subset: tuple[int, ...],
        hidden_width: int,
        hidden_layers: int,
        activation: str,
    ) -> "TaskNetwork":
        """Draw every parameter from N(0, 1) with ``Generator(PCG64(seed_sequence))``.

        Draw order: for each layer in turn its weight ``(fan_in, fan_out)`` then its bias, as float64
        ``standard_normal`` rounded to float32. The first weight is drawn for *all* ``n_factors``
        inputs and the rows of unseen factors are dropped, so a subset task equals the all-factor task
        with the same seed whose unseen inputs are clamped at 0.
        """
        rng = np.random.Generator(np.random.PCG64(seed_sequence))
        fans = [n_factors] + [hidden_width] * hidden_layers + [1]
        weights, biases = [], []
        for fan_in, fan_out in zip(fans[:-1], fans[1:]):
            weights.append(rng.standard_normal((fan_in, fan_out)).astype(np.float32))
            biases.append(rng.standard_normal(fan_out).astype(np.float32))
        weights[0] = np.ascontiguousarray(weights[0][list(subset)])
        return cls(tuple(subset), tuple(weights), tuple(biases), activation)

    def forward(self, z: np.ndarray, buffers: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Outputs (n,) float32 for normalised factors ``z`` (n, n_factors) float32.

        ``buffers`` are two float32 scratch arrays with at least ``n`` rows and ``hidden_width``
        columns, reused across calls so a streamed grid needs no new memory per chunk.
        """
        n = z.shape[0]
        act = ACTIVATIONS[self.activation]
        h, spare = buffers[0][:n], buffers[1][:n]
        np.matmul(z[:, list(self.subset)], self.weights[0], out=h)
        h += self.biases[0]
        act(h)
        for w, b in zip(self.weights[1:-1], self.biases[1:-1]):
            np.matmul(h, w, out=spare)
            spare += b
            act(spare)
            h, spare = spare, h
        out = np.matmul(h, self.weights[-1])[:, 0]
        out += self.biases[-1]
        return out
