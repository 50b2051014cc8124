"""Model + dataset -> code table (cached) -> metrics (+ protocols) -> score record.

One job per module:

* :mod:`~disentbench.evaluation.sources` — what a model is: checkpoint, TorchScript encoder, code file, or the
  ``ground-truth`` pseudo-model (the normalised factors as codes);
* :mod:`~disentbench.evaluation.codes` — the seeded sample of grid indices, batched encoding, the code cache;
* :mod:`~disentbench.evaluation.protocols` — the multi-task protocol of seed 004's Table 1 (``multitask.rmse``);
* :mod:`~disentbench.evaluation.bootstrap` — percentile-bootstrap intervals of the scores over the evaluated points;
* :mod:`~disentbench.evaluation.record` — :func:`evaluate`: the score record, its id, writing and printing it;
* :mod:`~disentbench.evaluation.runs` — train a tier's reference run and score it with the tier's protocol;
* :mod:`~disentbench.evaluation.aggregate` — the mean record of a row made of one run per task ("single-mean").

The tiers' protocols themselves live in :mod:`disentbench.tiers`.
"""

from disentbench.evaluation.codes import (
    DEFAULT_BATCH_SIZE,
    cached_codes,
    codes_cache_path,
    encode,
    sample_indices,
    unit_images,
)
from disentbench.evaluation.protocols import MULTITASK_KEY, multitask_rmse, resolve_tasks
from disentbench.evaluation.record import (
    COLLAPSE_RATIO,
    RECORD_FORMAT,
    RECORD_FORMAT_VERSION,
    RECORD_SCHEMA,
    collapsed_dimensions,
    evaluate,
    format_record,
    git_commit,
    read_record,
    validate_record,
    write_record,
)
from disentbench.evaluation.aggregate import aggregate_records
from disentbench.evaluation.runs import (
    evaluate_row,
    evaluate_run,
    evaluate_tasks,
    is_trained,
    mean_over_tasks,
    row_model,
    row_runs,
    task_dir,
    task_spec,
    train_run,
)
from disentbench.evaluation.sources import (
    GROUND_TRUTH,
    EvaluationError,
    ModelSource,
    check_codes,
    config_hash,
    file_sha256,
    load_code_file,
    open_model,
)

__all__ = [
    "COLLAPSE_RATIO",
    "DEFAULT_BATCH_SIZE",
    "GROUND_TRUTH",
    "MULTITASK_KEY",
    "RECORD_FORMAT",
    "RECORD_FORMAT_VERSION",
    "RECORD_SCHEMA",
    "EvaluationError",
    "ModelSource",
    "aggregate_records",
    "cached_codes",
    "check_codes",
    "codes_cache_path",
    "collapsed_dimensions",
    "config_hash",
    "encode",
    "evaluate",
    "evaluate_row",
    "evaluate_run",
    "evaluate_tasks",
    "file_sha256",
    "format_record",
    "git_commit",
    "is_trained",
    "load_code_file",
    "mean_over_tasks",
    "multitask_rmse",
    "open_model",
    "read_record",
    "resolve_tasks",
    "row_model",
    "row_runs",
    "sample_indices",
    "task_dir",
    "task_spec",
    "train_run",
    "unit_images",
    "validate_record",
    "write_record",
]
