"""Bootstrap intervals of score records (disentbench.evaluation.bootstrap): coverage, determinism, records, schema."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from disentbench import evaluation as ev
from disentbench import tiers
from disentbench.api import evaluate
from disentbench.cli import main
from disentbench.evaluation import bootstrap as bs
from disentbench.metrics import compute_metrics

DATASET = "dsprites-procedural"
CHEAP = "mig,spearman,factor_vae,irs"
#: a small train/test split for the predictor metrics
_SMALL = {"n_train": 250, "n_test": 150}


def correlated_pair(n: int, r: float, rng: np.random.Generator, classes: int = 1_000_000):
    """One factor of ``classes`` equiprobable classes, ``floor(classes · Φ(X))``, and one code ``exp(Y)``, with
    (X, Y) standard bivariate normal of correlation ``r``."""
    x = rng.standard_normal(n)
    y = r * x + math.sqrt(1.0 - r * r) * rng.standard_normal(n)
    factor = np.minimum(np.floor(classes * norm.cdf(x)), classes - 1).astype(np.int64)
    return factor[:, None], np.exp(y)[:, None]


def spearman_intervals(factors, codes, *, resamples: int, level: float, seed: int):
    point = {"spearman": compute_metrics(factors, codes, ["spearman"], random_state=seed)["spearman"].scores}
    return bs.bootstrap(factors, codes, point, resamples=resamples, level=level, seed=seed, preset="reference")


def test_percentile_interval_covers_a_closed_form_spearman_at_its_nominal_rate():
    """Coverage of the true value by 90 % intervals of ``spearman.mean`` over 100 synthetic samples.

    Closed form: the factor is a strictly increasing function of X (to a grid of 10⁶ classes: ties between 200
    rows are rare and the discretisation moves ρ_s by O(10⁻⁶)) and the code a strictly increasing function of Y,
    so their Spearman correlation is that of (X, Y), bivariate normal with correlation r:
    ρ_s = (6/π)·arcsin(r/2) (Pearson 1907; Kruskal 1958). With one factor and one code, significantly correlated
    at n = 200 (t ≈ 10), ``spearman.mean`` is |ρ̂_s|. The sample statistic's bias,
    E ρ̂_s − ρ_s = −(6/(π(n+1)))·(3·arcsin(r/2) − arcsin r) ≈ −0.003 (Moran 1948), is small beside its
    spread (≈ 0.05), so the percentile interval should cover ρ_s at about 90 %: with 100 repetitions the count is
    binomial (sd 3), and the band [80, 97] is ±3 sd around 90 allowing for B = 100's Monte-Carlo error
    (measured: 88 of 100 with B = 100, 87 with B = 200).
    """
    r, n, repetitions, level = 0.6, 200, 100, 0.90
    truth = 6.0 / math.pi * math.asin(r / 2.0)
    rng = np.random.default_rng(2024)
    covered = 0
    for rep in range(repetitions):
        factors, codes = correlated_pair(n, r, rng)
        low, high = spearman_intervals(factors, codes, resamples=100, level=level, seed=rep).intervals["spearman.mean"]
        covered += low <= truth <= high
    assert 80 <= covered <= 97, f"coverage {covered}/{repetitions} at nominal {level:.0%}"


def test_same_seed_same_intervals_and_another_seed_others():
    factors, codes = correlated_pair(300, 0.5, np.random.default_rng(0))
    first = spearman_intervals(factors, codes, resamples=30, level=0.95, seed=3)
    again = spearman_intervals(factors, codes, resamples=30, level=0.95, seed=3)
    other = spearman_intervals(factors, codes, resamples=30, level=0.95, seed=4)
    assert first.intervals == again.intervals and first.bias == again.bias
    assert first.intervals["spearman.mean"] != other.intervals["spearman.mean"]


def test_resample_b_depends_on_neither_the_number_of_resamples_nor_the_metrics():
    assert np.array_equal(bs.resample_rows(50, 7, 3), bs.resample_rows(50, 7, 3))
    assert not np.array_equal(bs.resample_rows(50, 7, 3), bs.resample_rows(50, 7, 4))
    factors, codes = correlated_pair(300, 0.5, np.random.default_rng(0))
    point = {name: r.scores for name, r in compute_metrics(factors, codes, ["mig", "spearman"]).items()}
    both = bs.bootstrap(factors, codes, point, resamples=8, level=0.9, seed=1, preset="reference",
                        limits={"spearman": 3})
    alone = spearman_intervals(factors, codes, resamples=3, level=0.9, seed=1)
    assert both.metrics == {"mig": 8, "spearman": 3}
    assert both.intervals["spearman.mean"] == alone.intervals["spearman.mean"]


def test_limits_cap_resamples_and_exclude_metrics_capped_at_zero():
    assert bs.resample_plan(["mig", "dci", "sap"], 100, {"dci": 0, "sap": 20}) == {"mig": 100, "dci": 0, "sap": 20}
    assert bs.resample_plan(["sap"], 5, {"sap": 20}) == {"sap": 5}
    assert tiers.bootstrap_limits("fast")["dci"] > 0 and tiers.bootstrap_limits("reference")["dci"] == 0
    assert tiers.bootstrap_limits("dci_rf") == tiers.bootstrap_limits("reference")
    narrow, wide = tiers.bootstrap_limits("fast", tiers.WIDE_CODE_DIM), tiers.bootstrap_limits("fast", 256)
    assert narrow == tiers.bootstrap_limits("fast") and (wide["dci"], wide["sap"], wide["infomec"]) == (0, 10, 10)
    assert tiers.bootstrap_limits("reference", 256)["explicitness"] == 10  # never raised above the preset's cap
    factors, codes = correlated_pair(300, 0.5, np.random.default_rng(0))
    point = {name: r.scores for name, r in compute_metrics(factors, codes, ["mig", "spearman"]).items()}
    result = bs.bootstrap(factors, codes, point, resamples=3, level=0.9, seed=0, preset="reference",
                          limits={"mig": 0}, excluded=["multitask.rmse"])
    assert result.excluded == ["multitask.rmse", "mig.score"] and result.metrics == {"spearman": 3}
    assert "mig.score" not in result.intervals and set(result.intervals) == set(point["spearman"])


def test_every_predictor_metric_splits_by_the_first_draw_of_its_generator(monkeypatch):
    """The contract :func:`bs.predictor_split` relies on: a metric with ``n_train``/``n_test`` settings trains and
    tests on the rows it predicts (fails if a metric draws anything else from its generator before the split)."""
    import sys

    from disentbench.metrics import list_metrics

    seen: dict[str, tuple] = {}
    for module in [m for name, m in sys.modules.items() if name.startswith("disentbench.metrics.")]:
        original = getattr(module, "train_test_indices", None)
        if original is not None:
            def spy(*args, _original=original, metric, **kw):
                seen[metric] = split = _original(*args, metric=metric, **kw)
                return split
            monkeypatch.setattr(module, "train_test_indices", spy)
    factors = np.random.default_rng(0).integers(0, 3, size=(400, 2))
    codes = np.random.default_rng(1).standard_normal((400, 3))
    predictors = [i.name for i in list_metrics() if bs.predictor_split(i.name, 20_000, "fast", 7) is not None]
    assert {"dci", "sap", "explicitness"} <= set(predictors)
    compute_metrics(factors, codes, predictors, preset="fast", random_state=7,
                    overrides=dict.fromkeys(predictors, _SMALL))
    used = dict(seen)  # predictor_split below calls the spied function too
    for name in predictors:
        expected = bs.predictor_split(name, 400, "fast", 7, _SMALL)
        assert all(np.array_equal(a, b) for a, b in zip(used[name], expected)), name


def test_a_split_keeping_resample_draws_train_rows_from_train_and_test_rows_from_test():
    train, test = np.array([5, 0, 7, 2]), np.array([1, 6])
    rows = bs.split_resample_rows(9, (train, test), seed=3, index=2)
    assert set(rows[train]) <= set(train) and set(rows[test]) <= set(test)
    assert rows[3] == 3 and rows[4] == 4 and rows[8] == 8  # rows outside the split stay
    assert np.array_equal(rows, bs.split_resample_rows(9, (train, test), seed=3, index=2))
    split = bs.predictor_split("sap", 400, "fast", 7, _SMALL)
    for index in range(20):  # as the metric splits a resample: no original row on both sides
        rows = bs.split_resample_rows(400, split, seed=7, index=index)
        assert not set(rows[split[0]]) & set(rows[split[1]])
    whole = bs.resample_rows(400, 7, 0)  # what resampling the whole table did
    assert set(whole[split[0]]) & set(whole[split[1]])


def test_a_memorising_predictor_gets_no_leak_from_duplicated_rows():
    """Codes of pure noise, 150 dimensions for 400 training rows: logistic regression memorises the training rows
    (train AUC ≈ 0.85 on the sample, 0.98 on a resample) and tests at chance. Resampling the whole table put a
    test row's duplicate in train half the time, and the interval of ``explicitness.test`` lay above the point
    estimate (measured [0.63, 0.75] around 0.54); resampling within the split keeps it about the estimate."""
    rng = np.random.default_rng(0)
    factors, codes = rng.integers(0, 2, size=(600, 1)), rng.standard_normal((600, 150))
    settings = {"explicitness": {"n_train": 400, "n_test": 200}}
    point = {"explicitness": compute_metrics(factors, codes, ["explicitness"], overrides=settings)["explicitness"].scores}
    result = bs.bootstrap(factors, codes, point, resamples=20, level=0.9, seed=0, preset="reference",
                          overrides=settings)
    low, high = result.intervals["explicitness.test"]
    assert low <= point["explicitness"]["explicitness.test"] <= high
    assert abs(result.bias["explicitness.test"]) < 0.05


@pytest.mark.parametrize("resamples, level, message", [
    (-1, 0.95, "resamples must be an integer >= 0"), (2.5, 0.95, "resamples must be an integer >= 0"),
    (True, 0.95, "resamples must be an integer >= 0"), (10, 0.0, r"level must be in \(0, 1\)"),
    (10, 1.0, r"level must be in \(0, 1\)"), (10, 95, r"level must be in \(0, 1\)"),
])
def test_bad_settings_are_one_line_errors(resamples, level, message):
    with pytest.raises(ValueError, match=message):
        bs.check_settings(resamples, level)


def test_a_metric_failing_on_some_resamples_is_counted(monkeypatch):
    factors, codes = correlated_pair(300, 0.5, np.random.default_rng(0))
    real, calls = bs._replicate, []

    def flaky(*args):
        calls.append(1)
        if len(calls) % 3 == 0:
            raise ValueError("a factor has one class left\nsecond line")
        return real(*args)

    monkeypatch.setattr(bs, "_replicate", flaky)
    result = spearman_intervals(factors, codes, resamples=12, level=0.9, seed=0)
    assert result.failed == {"spearman": 4} and result.metrics == {"spearman": 12}
    assert result.errors["spearman"] == "ValueError: a factor has one class left"
    assert None not in result.intervals["spearman.mean"]
    assert result.warnings() == ["bootstrap: spearman failed on 4 of 12 resamples (first: ValueError: a factor has "
                                 "one class left)"]
    monkeypatch.setattr(bs, "_replicate", lambda *a: (_ for _ in ()).throw(RuntimeError("never")))
    broken = spearman_intervals(factors, codes, resamples=3, level=0.9, seed=0)
    assert broken.intervals["spearman.mean"] == [None, None] and broken.bias["spearman.mean"] is None


def _without_times(record):
    details = copy.deepcopy(record["metric_details"])
    for item in details.values():
        item.pop("elapsed_s")
    return details


@pytest.mark.filterwarnings("ignore:factor_vae. some factor values have only")
def test_point_estimates_are_unchanged_by_the_bootstrap():
    kw = dict(metrics=CHEAP, n_points=2000, seed=5)
    plain = evaluate("ground-truth", DATASET, bootstrap=0, **kw)
    booted = evaluate("ground-truth", DATASET, bootstrap=10, **kw)
    assert "intervals" not in plain and "bootstrap" not in plain
    assert booted["metrics"] == plain["metrics"]  # exactly: floats compared bit for bit
    assert _without_times(booted) == _without_times(plain)
    assert set(booted["intervals"]) == set(booted["metrics"])
    info = booted["bootstrap"]
    assert (info["method"], info["resamples"], info["level"], info["seed"]) == ("percentile", 10, 0.95, 5)
    assert info["metrics"] == dict.fromkeys(CHEAP.split(","), 10) and info["excluded"] == []
    for key, (low, high) in booted["intervals"].items():
        assert low <= high, key
    ev.validate_record(json.loads(json.dumps(booted, allow_nan=False)), "booted")


def test_tier_settings_carry_the_bootstrap_and_the_record_names_what_has_no_interval():
    assert tiers.evaluation_settings("smoke")["bootstrap_resamples"] > 0
    assert tiers.evaluation_settings("smoke", bootstrap_resamples=0)["bootstrap_resamples"] == 0
    assert 0 < tiers.CUSTOM_SETTINGS["bootstrap_level"] < 1
    record = evaluate("ground-truth", DATASET, metrics="mig,mcc", n_points=1000, bootstrap=4,
                      bootstrap_level=0.8)
    assert record["bootstrap"]["level"] == 0.8 and record["bootstrap"]["failed"] == {"mig": 0, "mcc": 0}
    assert "95% interval" not in ev.format_record(record) and "80% interval" in ev.format_record(record)


def _record():
    return evaluate("ground-truth", DATASET, metrics="mig", n_points=500, bootstrap=5)


def test_schema_accepts_the_new_fields_and_records_without_them():
    record = json.loads(json.dumps(_record()))
    ev.validate_record(record, "with intervals")
    record["intervals"]["mig.score"] = [None, None]
    ev.validate_record(record, "null ends")
    for key in ("intervals", "bootstrap"):
        record.pop(key)
    ev.validate_record(record, "written before the bootstrap")


@pytest.mark.parametrize("path, value", [
    (("intervals", "mig.score"), [0.1, 0.2, 0.3]),
    (("intervals", "mig.score"), ["0.1", 0.2]),
    (("intervals", "MIG"), [0.1, 0.2]),
    (("bootstrap", "method"), "bca"),
    (("bootstrap", "level"), 1.5),
    (("bootstrap", "resamples"), 0),
    (("bootstrap", "seed"), -1),
    (("bootstrap", "failed"), {"mig": -1}),
    (("bootstrap", "bias"), {"mig.score": "small"}),
])
def test_schema_rejects_malformed_bootstrap_fields(path, value):
    record = json.loads(json.dumps(_record()))
    record[path[0]][path[1]] = value
    with pytest.raises(ev.EvaluationError, match="does not match the score-record schema"):
        ev.validate_record(record, "malformed")


def test_cli_bootstrap_flags(tmp_path, capsys):
    out = tmp_path / "record.json"
    args = ["evaluate", "--model", "ground-truth", "--dataset", DATASET, "--metrics", "mig", "--n-points", "500"]
    assert main([*args, "--bootstrap", "6", "--bootstrap-level", "0.9", "--out", str(out)]) == 0
    assert "90% interval" in capsys.readouterr().out
    assert ev.read_record(out)["bootstrap"]["metrics"] == {"mig": 6}
    assert main([*args, "--bootstrap", "0", "--out", str(out)]) == 0
    assert "interval" not in capsys.readouterr().out and "intervals" not in ev.read_record(out)
    assert main([*args, "--bootstrap", "-2"]) == 2
    assert "bootstrap resamples must be an integer >= 0" in capsys.readouterr().err


def test_mean_of_records_gets_the_bootstrap_of_the_mean_from_their_replicates():
    """Two 'members' scored on the same rows with the same seed: replicate b of their mean is the mean statistic
    recomputed on resample b's rows, and the interval is the percentile interval of those means."""
    rng = np.random.default_rng(5)
    factors, code_a = correlated_pair(300, 0.6, rng)
    code_b = code_a + rng.normal(0.0, 2.0, size=code_a.shape)  # a noisier member on the same rows
    members = [spearman_intervals(factors, c, resamples=25, level=0.9, seed=2) for c in (code_a, code_b)]
    points = [compute_metrics(factors, c, ["spearman"], random_state=2)["spearman"].scores for c in (code_a, code_b)]
    mean_point = {k: (points[0][k] + points[1][k]) / 2 for k in points[0]}
    result = bs.mean_replicates([m.info() for m in members], mean_point)
    direct = []
    for b in range(25):
        rows = bs.resample_rows(len(factors), 2, b)
        scores = [compute_metrics(factors[rows], c[rows], ["spearman"], random_state=2)["spearman"].scores["spearman.mean"]
                  for c in (code_a, code_b)]
        direct.append((scores[0] + scores[1]) / 2)
    assert result.replicates["spearman.mean"] == pytest.approx(direct, abs=1e-12)
    assert result.intervals["spearman.mean"] == pytest.approx(bs.percentile_interval(direct, 0.9), abs=1e-12)
    assert result.metrics == {"spearman": 25} and (result.seed, result.level, result.resamples) == (2, 0.9, 25)
    lows = [m.intervals["spearman.mean"][0] for m in members]
    assert min(lows) < result.intervals["spearman.mean"][0]  # the mean's interval lies between the members'
    # a failed replicate of one member leaves that replicate of the mean out; other seeds share no resamples
    blocks = [m.info() for m in members]
    blocks[1]["replicates"]["spearman.mean"][3] = None
    assert bs.mean_replicates(blocks, mean_point).replicates["spearman.mean"][3] is None
    other = spearman_intervals(factors, code_b, resamples=25, level=0.9, seed=3)
    assert bs.mean_replicates([members[0].info(), other.info()], mean_point) is None
    assert bs.mean_replicates([{k: v for k, v in blocks[0].items() if k != "replicates"}, blocks[1]], mean_point) is None
    before_split_fix = {k: v for k, v in blocks[0].items() if k != "resampling"}  # a record made before a7ac682
    assert bs.mean_replicates([before_split_fix, blocks[1]], mean_point) is None
