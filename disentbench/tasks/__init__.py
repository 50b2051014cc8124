"""Synthetic multi-task generator: random tanh-MLP regression tasks over ground-truth factors.

Seed 004 ("On the relationship between disentanglement and multi-task learning"), section 3.1 and
appendix H. See ``docs/tasks.md``.
"""

from disentbench.tasks.io import load_statistics, load_targets
from disentbench.tasks.network import ACTIVATIONS, TaskNetwork
from disentbench.tasks.stats import TargetStatistics, TaskStatistics
from disentbench.tasks.taskset import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_N_TASKS,
    FACTOR_MODES,
    GENERATOR_VERSION,
    TaskSet,
    default_task_set,
    load_task_set,
)

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_N_TASKS",
    "FACTOR_MODES",
    "GENERATOR_VERSION",
    "TargetStatistics",
    "TaskNetwork",
    "TaskSet",
    "TaskStatistics",
    "default_task_set",
    "load_statistics",
    "load_targets",
    "load_task_set",
]
