"""Run disentanglement_lib's metric functions on the same representation as ours (optional comparison).

Needs a checkout (or ``git archive`` export) of google-research/disentanglement_lib and ``absl-py`` + ``six``
installed (benchmark-only; not package dependencies). ``gin``/``gin.tf`` are replaced by a tiny stub
(``configurable`` = identity, ``REQUIRED`` sentinel) and the gin-configured settings of
``config/unsupervised_study_v1/metric_configs`` are passed explicitly. Nothing of the reference is copied here.

The representation is a code table over the whole factor grid: ``GridData`` samples factors uniformly (like the
reference datasets) and its "observations" are grid row indices, which ``representation`` maps to codes.
"""

from __future__ import annotations

import sys
import types

import numpy as np

# our key -> (reference metric, reference key)
KEY_MAP = {
    "beta_vae.train_accuracy": ("beta_vae", "train_accuracy"),
    "beta_vae.eval_accuracy": ("beta_vae", "eval_accuracy"),
    "factor_vae.train_accuracy": ("factor_vae", "train_accuracy"),
    "factor_vae.eval_accuracy": ("factor_vae", "eval_accuracy"),
    "dci.disentanglement": ("dci", "disentanglement"),
    "dci.completeness": ("dci", "completeness"),
    "dci.informativeness_train": ("dci", "informativeness_train"),
    "dci.informativeness_test": ("dci", "informativeness_test"),
    "sap.score": ("sap", "SAP_score"),
    "mig.score": ("mig", "discrete_mig"),
    "modularity.score": ("modularity", "modularity_score"),
    "explicitness.train": ("modularity", "explicitness_score_train"),
    "explicitness.test": ("modularity", "explicitness_score_test"),
    "irs.score": ("irs", "IRS"),
}
# reference metric -> our metric names computing the same keys
OURS_FOR = {"modularity": ("modularity", "explicitness")}


def _install_gin_stub() -> None:
    if "gin" in sys.modules and getattr(sys.modules["gin"], "_disentbench_stub", False):
        return
    gin = types.ModuleType("gin")
    gin._disentbench_stub = True
    gin.REQUIRED = object()

    def configurable(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda fn: fn

    gin.configurable = configurable
    gin_tf = types.ModuleType("gin.tf")
    gin.tf = gin_tf
    sys.modules["gin"] = gin
    sys.modules["gin.tf"] = gin_tf


class GridData:
    """disentanglement_lib GroundTruthData over a factor grid; observations are flat grid indices."""

    def __init__(self, sizes):
        self.factors_num_values = list(sizes)
        self.num_factors = len(sizes)
        self.observation_shape = [1]

    def sample_factors(self, num, random_state):
        return np.stack([random_state.randint(s, size=num) for s in self.factors_num_values], axis=1)

    def sample_observations_from_factors(self, factors, random_state):
        return np.ravel_multi_index(tuple(factors.T), self.factors_num_values)

    def sample(self, num, random_state):
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num, random_state):
        return self.sample(num, random_state)[1]


class Reference:
    """The reference metrics with unsupervised_study_v1 settings, on codes given for every grid point."""

    METRICS = ("beta_vae", "dci", "factor_vae", "irs", "mig", "modularity", "sap")

    def __init__(self, path: str, sizes, grid_codes: np.ndarray):
        _install_gin_stub()
        if path not in sys.path:
            sys.path.insert(0, path)
        from disentanglement_lib.evaluation.metrics import (  # noqa: PLC0415
            beta_vae,
            dci,
            factor_vae,
            irs,
            mig,
            modularity_explicitness,
            sap_score,
            utils,
        )

        utils.make_discretizer.__defaults__ = (20, utils._histogram_discretize)
        factor_vae._prune_dims.__defaults__ = (0.05,)
        self.data = GridData(sizes)
        codes = np.asarray(grid_codes, dtype=np.float64)
        self.represent = lambda obs: codes[np.asarray(obs)]
        self._fns = {
            "beta_vae": lambda d, r, rs: beta_vae.compute_beta_vae_sklearn(
                d, r, rs, batch_size=64, num_train=10000, num_eval=5000),
            "dci": lambda d, r, rs: dci.compute_dci(d, r, rs, num_train=10000, num_test=5000),
            "factor_vae": lambda d, r, rs: factor_vae.compute_factor_vae(
                d, r, rs, batch_size=64, num_train=10000, num_eval=5000, num_variance_estimate=10000),
            "irs": lambda d, r, rs: irs.compute_irs(d, r, rs, diff_quantile=0.99, num_train=10000, batch_size=16),
            "mig": lambda d, r, rs: mig.compute_mig(d, r, rs, num_train=10000),
            "modularity": lambda d, r, rs: modularity_explicitness.compute_modularity_explicitness(
                d, r, rs, num_train=10000, num_test=5000),
            "sap": lambda d, r, rs: sap_score.compute_sap(
                d, r, rs, num_train=10000, num_test=5000, continuous_factors=False),
        }

    def run(self, metric: str, seed: int) -> dict:
        """The reference's score dict for ``metric`` with ``np.random.RandomState(seed)``; the global numpy RNG
        (drawn from by the reference's SAP and DCI estimators) is seeded too."""
        np.random.seed(seed)
        return self._fns[metric](self.data, self.represent, np.random.RandomState(seed))
