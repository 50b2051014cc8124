"""Cheap disentanglement metrics during training (``disentbench train --metrics-every N``).

Every N steps the loop encodes a fixed, seeded sample of the factor grid with the model's :meth:`encode` (eval mode,
no gradient, no global RNG draw) and logs MIG and the fast DCI (hist-GBT importances; its held-out accuracy is the
informativeness) as a ``{"event": "metrics", "step", ...}`` line of ``log.jsonl``. Training is unchanged by it: the
same seed gives the same weights with or without the option.
"""

from __future__ import annotations

import numpy as np
import torch

from disentbench.models.base import Model, encode_all

#: grid points of the monitoring sample and the share of it the DCI predictors are fitted on
MONITOR_POINTS = 2000
MONITOR_TRAIN_FRACTION = 0.7
#: metrics logged (registry names) and their settings: the fast DCI on the sample's own train/test split
MONITOR_METRICS = ("mig", "dci")


class MetricMonitor:
    """MIG and fast DCI of a model's codes on ``n_points`` grid points of ``dataset`` drawn with ``seed``."""

    def __init__(self, dataset, *, seed: int, device, n_points: int = MONITOR_POINTS):
        from disentbench.evaluation.codes import sample_indices
        from disentbench.training.data import load_images

        space = dataset.factor_space
        indices = sample_indices(space.n_points, n_points, seed)
        self.classes = space.index_to_classes(indices)
        self.images = load_images(dataset, indices).to(device)
        self.pixel_max = float(dataset.pixel_max)
        self.seed = seed
        n = len(indices)
        n_train = int(n * MONITOR_TRAIN_FRACTION)
        self.overrides = {"mig": {"n_samples": n}, "dci": {"n_train": n_train, "n_test": n - n_train}}

    def __call__(self, model: Model) -> dict[str, float]:
        """Score keys (``mig.score``, ``dci.*``) of the model's current codes on the monitoring sample."""
        from disentbench.metrics import compute_metrics

        codes = encode_all(model, lambda pos: self.images.index_select(0, pos).float().div_(self.pixel_max),
                           len(self.images), self.images.device)
        codes = codes.detach().to(torch.float32).cpu().numpy()
        if not np.isfinite(codes).all():
            return {}
        results = compute_metrics(self.classes, codes, list(MONITOR_METRICS), preset="fast", random_state=self.seed,
                                  overrides=self.overrides)
        return {k: v for r in results.values() for k, v in r.scores.items()}
