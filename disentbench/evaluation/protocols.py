"""Evaluation protocols on top of the metrics: the multi-task protocol of seed 004 (sec. 4.3, Table 1).

Task heads are trained on the frozen codes against a task file or the dataset's default task set; the mean
test RMSE over tasks is the score ``multitask.rmse`` (lower is better), the per-task RMSEs go to the record's
``tasks`` entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from disentbench.evaluation.sources import EvaluationError, file_sha256
from disentbench.tiers import DEFAULT_TASKS

#: the score key of the multi-task protocol (its meaning is declared in the metric registry)
MULTITASK_KEY = "multitask.rmse"


def multitask_rmse(
    codes: np.ndarray,
    targets: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-4,
    test_fraction: float = 0.2,
    hidden: Sequence[int] = (300, 300, 300),
    activation: str = "tanh",
) -> np.ndarray:
    """Per-task test RMSE of multi-task heads trained on frozen codes (seed 004, sec. 4.3, Table 1; app. C.3:
    the Table-3 heads with tanh, 30 epochs, batch 64, Adam lr 1e-4). One head per task; loss = sum of task
    MSEs; RMSE_t = sqrt(mean_test (ŷ_t − y_t)²) on a seeded held-out split
    (:func:`~disentbench.models.multitask.table1_rmse`, the definition the ``heads-on-frozen`` trainer reports too;
    the score is their mean)."""
    import torch

    from disentbench.models.blocks import TaskHeads
    from disentbench.models.multitask import table1_rmse

    n = len(codes)
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 1:
        raise EvaluationError(f"too few points ({n}) for a train/test split of the multi-task protocol")
    perm = np.random.default_rng(seed).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    x = torch.as_tensor(codes, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = TaskHeads(codes.shape[1], targets.shape[1], "multi", tuple(hidden), activation)
    opt = torch.optim.Adam(heads.parameters(), lr=lr, betas=(0.9, 0.999))
    train_t = torch.as_tensor(train)
    for _ in range(epochs):
        order = train_t[torch.randperm(len(train_t), generator=gen)]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = ((heads(x[idx]) - y[idx]) ** 2).mean(dim=0).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return table1_rmse(heads(x[test]), y[test]).numpy()


def resolve_tasks(tasks: Path | str | None, dataset) -> tuple[Any, dict[str, Any]] | None:
    """The task set of the multi-task protocol (a task file, or ``"default"``: the dataset's default set)
    and its description for the record; None without tasks. A file for another factor space is refused."""
    from disentbench.tasks import TaskSet, default_task_set

    if tasks is None:
        return None
    if str(tasks) == DEFAULT_TASKS and not Path(tasks).exists():
        taskset = default_task_set(dataset.factor_space)
        return taskset, {"file": None, "default": True, "seed": taskset.seed, "n_tasks": taskset.n_tasks}
    taskset = TaskSet.load(tasks)
    if taskset.factor_space != dataset.factor_space:
        raise EvaluationError(f"{tasks}: the task file was generated for another factor space than {dataset.name}'s")
    return taskset, {"file": str(tasks), "sha256": file_sha256(Path(tasks)), "seed": taskset.seed, "n_tasks": taskset.n_tasks}
