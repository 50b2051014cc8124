"""One score record from the records of several runs: the leaderboard row of a model whose row is the mean over one
run per task (model registry ``row="mean-over-tasks"``; seed 004's "single-mean", sec. 4.1 and Table 5).

The aggregate is a score record of the same format (:data:`~disentbench.evaluation.record.RECORD_FORMAT_VERSION`):

* ``metrics``: per score key, the mean over the member records (task order), counts excepted: a mean of counts
  (``factor_vae.num_active_dims``, ...) is not a count, so it goes to ``aggregate.count_means`` and the row leaves
  those columns empty (the members' records keep their counts). A key missing from any member is left
  out and named in ``warnings``. ``multitask.rmse`` keeps its per-record definition: the mean over task models of
  each model's Table-1 RMSE (heads trained on its frozen codes against *every* task of the evaluation's task set),
  and ``tasks.rmse_per_task`` is the element-wise mean of the members' lists, so its mean is again the score;
* ``aggregate``: ``over`` (``tasks``), ``rule`` (``mean``), ``n``, the member ``records`` (paths relative to
  ``model_source.path``, the row's run folder), their ``record_ids`` and ``std``, the sample standard deviation
  over members of each averaged key (0 for one member);
* identifiers (model, dataset, tier, seed, preset, versions, ...) must agree across members and are carried over;
  ``model_source.sha256`` is the SHA-256 of the members' model hashes joined by ``|``; ``collapsed_dimensions`` is
  the union over members (a row with any collapsed task model is refused by ``leaderboard add`` unless forced);
  each member's warnings are kept, prefixed with its task; ``metric_details`` stay in the member records;
* ``intervals`` and ``bootstrap``: the percentile-bootstrap interval of each mean over the evaluated points. The
  members are evaluated on the same points with the same seed, so resample b draws the same rows for each of them
  and the mean of their b-th replicates is the b-th replicate of the mean
  (:func:`disentbench.evaluation.bootstrap.mean_replicates`). Like a single record's interval it describes the
  sampling of points, not the spread over tasks (``aggregate.std``). Left out when the members carry no
  replicates or do not share their resamples.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from disentbench.evaluation.bootstrap import mean_replicates
from disentbench.evaluation.record import RECORD_FORMAT, RECORD_FORMAT_VERSION, _record_id
from disentbench.evaluation.sources import EvaluationError
from disentbench.metrics.registry import score_meaning

#: record fields every member must share; the aggregate carries them as they are (those its first member has)
IDENTITY_FIELDS = ("model", "model_config_hash", "dataset", "dataset_version", "tier", "seed", "preset")
CODE_FIELDS = ("n_points", "code_dim")
PROVENANCE_FIELDS = ("supervision", "disentbench_version", "metric_definitions_version", "leaderboard_version",
                     "commit", "blas_kernels")


def shared_value(records: Sequence[dict[str, Any]], key: str, values: Sequence[Any] | None = None) -> Any:
    """The one value of ``key`` (or of ``values``, one per record) that all records share; else an error."""
    values = [r.get(key) for r in records] if values is None else list(values)
    distinct = {json.dumps(v, sort_keys=True) for v in values}
    if len(distinct) > 1:
        raise EvaluationError(f"the records to average disagree on {key!r}: {', '.join(sorted(distinct))}")
    return values[0]


def mean_scores(records: Sequence[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Per score key present in every record: the mean and the sample std over records (0 for one record), and the
    keys left out because some record lacks them. The mean is clipped to the members' [min, max] (rounding only)."""
    keys = list(dict.fromkeys(k for r in records for k in r["metrics"]))
    missing = [k for k in keys if any(k not in r["metrics"] for r in records)]
    means, stds = {}, {}
    for key in keys:
        if key in missing:
            continue
        values = np.array([r["metrics"][key] for r in records], dtype=np.float64)
        means[key] = float(np.clip(values.mean(), values.min(), values.max()))
        stds[key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return means, stds, missing


def mean_task_info(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The members' ``tasks`` (multi-task protocol) with ``rmse_per_task`` averaged element-wise; the rest shared."""
    infos = [r.get("tasks") for r in records]
    if all(info is None for info in infos):
        return None
    if any(info is None for info in infos):
        raise EvaluationError("the records to average disagree on 'tasks': some ran the multi-task protocol, some not")
    rest = shared_value(records, "tasks", [{k: v for k, v in i.items() if k != "rmse_per_task"} for i in infos])
    per_task = np.array([i["rmse_per_task"] for i in infos], dtype=np.float64).mean(axis=0)
    return {**rest, "rmse_per_task": [float(v) for v in per_task]}


def aggregate_records(records: Sequence[dict[str, Any]], paths: Sequence[Path], run_dir: Path,
                      labels: Sequence[str]) -> dict[str, Any]:
    """The mean-over-tasks score record of ``records`` (one per task run, task order; written at ``paths`` inside
    ``run_dir``; ``labels`` name them in warnings, e.g. ``task 3``). See the module docstring for each field."""
    if not records:
        raise EvaluationError(f"{run_dir}: no task records to average")
    run_dir = Path(run_dir)
    shared = {key: shared_value(records, key) for key in (*IDENTITY_FIELDS, *CODE_FIELDS, *PROVENANCE_FIELDS)
              if key in records[0]}
    means, stds, missing = mean_scores(records)
    counts = [k for k in means if score_meaning(k).integer]
    metrics = {k: v for k, v in means.items() if k not in counts}
    if not metrics:
        raise EvaluationError(f"{run_dir}: the task records share no score key to average")
    warnings = [f"{label}: {w}" for label, r in zip(labels, records) for w in r.get("warnings", [])]
    if missing:
        warnings.append(f"left out of the mean over {len(records)} tasks (missing in some task records): "
                        f"{', '.join(missing)}")
    member_ids = [r["record_id"] for r in records]
    sources = [r["model_source"] for r in records]
    protocols = [r.get("model_protocol") for r in records]
    return {
        "record_format": RECORD_FORMAT,
        "record_format_version": RECORD_FORMAT_VERSION,
        "record_id": _record_id(["mean-over-tasks", *member_ids]),
        **{k: shared[k] for k in IDENTITY_FIELDS},
        "metrics": metrics,
        "aggregate": {"over": "tasks", "rule": "mean", "n": len(records),
                      "records": [Path(p).relative_to(run_dir).as_posix() for p in paths],
                      "record_ids": member_ids, "std": stds, "count_means": {k: means[k] for k in counts}},
        "model_source": {
            "path": str(run_dir),
            "kind": shared_value(records, "model_source.kind", [s["kind"] for s in sources]),
            "sha256": hashlib.sha256("|".join(s["sha256"] for s in sources).encode()).hexdigest(),
            "model_type": shared_value(records, "model_source.model_type", [s["model_type"] for s in sources]),
            "representation": shared_value(records, "model_source.representation",
                                           [s.get("representation") for s in sources]),
        },
        "n_points": shared["n_points"],
        "codes_from_cache": all(r.get("codes_from_cache", False) for r in records),
        "code_dim": shared["code_dim"],
        "collapsed_dimensions": sorted({j for r in records for j in r.get("collapsed_dimensions", [])}),
        "tasks": mean_task_info(records),
        "model_protocol": None if all(p is None for p in protocols) else {"tasks": protocols},
        **{k: shared[k] for k in PROVENANCE_FIELDS if k in shared},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "warnings": warnings,
        "elapsed_s": round(sum(r.get("elapsed_s", 0.0) for r in records), 3),
        **mean_intervals(records, metrics),
    }


def mean_intervals(records: Sequence[dict[str, Any]], metrics: dict[str, float]) -> dict[str, Any]:
    """``intervals`` and ``bootstrap`` of the mean record from the members' replicates (empty when they have none
    or do not share their resamples; see the module docstring)."""
    blocks = [r.get("bootstrap") for r in records]
    result = None if any(b is None for b in blocks) else mean_replicates(blocks, metrics)
    if result is None:
        return {}
    result.excluded = sorted(set(metrics) - set(result.intervals))
    result.elapsed_s = sum(b.get("elapsed_s", 0.0) for b in blocks)
    return {"intervals": result.intervals, "bootstrap": result.info()}
