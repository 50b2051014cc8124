"""The smoke tier's deviations from the paper: computed from the configs, and the docs table says the same."""

import re
from pathlib import Path

from disentbench.training.deviations import Deviation, format_value, model_deviations, tier_deviations

DOC = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def documented() -> set[Deviation]:
    text = DOC.read_text()
    table = re.search(r"<!-- deviations:start -->\n(.*?)<!-- deviations:end -->", text, re.S)
    assert table, "docs/training.md has no deviations table"
    rows = set()
    for line in table.group(1).splitlines()[2:]:
        models, key, base, value = (c.strip() for c in line.strip("|").split("|")[:4])
        rows |= {Deviation(m.strip(), key.strip("`"), base, value) for m in models.split(",")}
    return rows


def test_the_docs_table_lists_exactly_the_computed_deviations():
    computed, docs = set(tier_deviations()), documented()
    assert not computed - docs, f"missing from docs/training.md: {sorted(computed - docs, key=str)[:3]}"
    assert not docs - computed, f"in docs/training.md but not in the configs: {sorted(docs - computed, key=str)[:3]}"


def test_a_smoke_only_key_is_a_deviation_and_bookkeeping_is_not():
    ae = {d.key: d for d in model_deviations("ae")}
    assert ae["lr"] == Deviation("ae", "lr", "0.0001", "0.001")
    assert ae["subset"].base == "all" and ae["epochs"] == Deviation("ae", "epochs", "100", "2")
    assert "checkpoint_every_steps" not in ae and "latent_dim" not in ae


def test_an_untrained_model_has_no_budget_deviation():
    assert model_deviations("random") == []


def test_protocol_deviations_are_listed():
    rows = {d.key: d for d in tier_deviations() if d.model == "evaluation"}
    assert rows["preset"] == Deviation("evaluation", "preset", "reference", "fast")


def test_format_value():
    assert [format_value(v) for v in (1e-3, True, [10, 15], 4000)] == ["0.001", "true", "[10, 15]", "4000"]
