"""Rows the committed code would not train again: a row's ``model_config_hash`` (the hash of the model config its
run used, :func:`disentbench.evaluation.config_hash`) against the hash of the config that the model's reference TOML
resolves to now for the row's tier and dataset. A row whose config moved since it ran (a smoke budget changed, say)
is stale: rerun it rather than keep it. Rows without a hash (the ground truth) or of unregistered models are not
reference runs and are skipped."""

from __future__ import annotations


def reference_config_hash(model: str, tier: str, dataset: str) -> str | None:
    """The config hash a reference run of ``model`` at ``tier`` on ``dataset`` has now (None: not a reference model)."""
    from disentbench.evaluation import config_hash
    from disentbench.models import list_models
    from disentbench.training import load_reference, reference_dir, resolve_spec

    if model not in {m.name for m in list_models()} or not (reference_dir() / f"{model}.toml").is_file():
        return None
    reference = load_reference(model)
    if tier not in reference.tiers:
        return None
    return config_hash(resolve_spec(model, tier=tier, seed=0, dataset=dataset, reference=reference)["config"])


def stale_rows(table) -> list[str]:
    """One line per row whose recorded model config differs from its reference config now."""
    known: dict[tuple[str, str, str], str | None] = {}
    lines = []
    for number, row in enumerate(table.rows, 1):
        recorded = row["model_config_hash"]
        if not recorded:
            continue
        key = (row["model"], row["tier"], row["dataset"])
        if key not in known:
            known[key] = reference_config_hash(*key)
        if known[key] not in (None, recorded):
            lines.append(f"{table.path.name} row {number} ({row['model']} on {row['dataset']}, seed {row['seed']}): "
                         f"trained with model config {recorded}, but reference_models/{row['model']}.toml "
                         f"[tiers.{row['tier']}] resolves to {known[key]} now; rerun the row")
    return lines
