"""Orderings as tests: the one-sided Welch test over seeds, Hedges' g, seeds needed, and the compare CLI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from disentbench import leaderboard as lb
from disentbench import tiers
from disentbench.cli import main
from disentbench.leaderboard.compare import hedges_g, seeds_needed, welch_power, welch_test

from test_leaderboard import make_record  # noqa: E402


def frame_of(scores: dict[str, list[float]], metric: str = "mig.score", dataset: str = "dsprites-procedural"):
    """A leaderboard-like frame: one row per (model, seed)."""
    rows = [{"model": m, "dataset": dataset, "preset": "fast", "seed": s, metric: v}
            for m, values in scores.items() for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_separated_scores_give_a_small_p_and_one_draw_of_one_distribution_a_large_one():
    rng = np.random.default_rng(0)
    (c,) = lb.compare(frame_of({"a": list(1 + 0.05 * rng.normal(size=3)), "b": list(0.05 * rng.normal(size=3))}),
                      "a", "b", "mig.score")
    assert c.p < 1e-3 and c.verdict == "a above b" and c.resolved and c.difference > 0.8
    (c,) = lb.compare(frame_of({"a": list(rng.normal(size=5)), "b": list(rng.normal(size=5))}), "a", "b", "mig.score")
    assert 0.05 < c.p < 0.95 and c.verdict == "not resolved at n = 5" and not c.resolved


def test_the_test_keeps_its_level_on_draws_of_one_distribution():
    rng = np.random.default_rng(1)
    p = np.array([welch_test(rng.normal(size=3), rng.normal(0, 3, size=3)).p for _ in range(800)])
    assert 0.025 < (p < 0.05).mean() < 0.075  # Welch under unequal spreads: close to alpha


def test_welch_t_and_df_and_hedges_g_by_hand():
    a, b = [2.0, 4.0, 6.0], [1.0, 2.0, 3.0]  # means 4 and 2, variances 4 and 1
    c = welch_test(a, b)
    assert c.t == pytest.approx(2 / math.sqrt(4 / 3 + 1 / 3))
    assert c.df == pytest.approx((5 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (1 / 3) ** 2 / 2))  # 2.941
    assert c.p == pytest.approx(stats.t.sf(c.t, c.df)) and c.p + c.p_reverse == pytest.approx(1)
    # pooled std sqrt((2·4 + 2·1)/4) = sqrt(2.5); J = 1 - 3/(4·6 - 9) = 0.8
    assert c.hedges_g == pytest.approx(0.8 * 2 / math.sqrt(2.5)) == hedges_g(a, b)
    assert hedges_g(a, b, sign=-1) == pytest.approx(-c.hedges_g)
    assert (c.n_a, c.n_b, c.mean_a, c.std_a, c.std_b) == (3, 3, 4.0, 2.0, 1.0)


def test_lower_is_better_metric_turns_the_test_around():
    frame = frame_of({"good": [10.0, 10.1, 9.9], "bad": [12.0, 12.2, 11.8]}, metric="multitask.rmse")
    (c,) = lb.compare(frame, "good", "bad", "multitask.rmse")
    assert c.difference == pytest.approx(2.0) and c.t > 0 and c.hedges_g > 0 and c.p < 0.01
    assert c.verdict == "good above bad" and "(lower is better)" in c.line()
    (c,) = lb.compare(frame, "bad", "good", "multitask.rmse")
    assert c.difference == pytest.approx(-2.0) and c.p > 0.99 and c.verdict == "good above bad"


def test_one_seed_no_spread_and_a_metric_without_direction():
    (c,) = lb.compare(frame_of({"a": [0.5], "b": [0.1, 0.2]}), "a", "b", "mig.score")
    assert c.verdict == "no test: a has 1 seed (a test needs 2 or more per model)" and math.isnan(c.p)
    assert not c.resolved and c.line().endswith(c.verdict)
    (c,) = lb.compare(frame_of({"a": [0.5, 0.5], "b": [0.1, 0.1]}), "a", "b", "mig.score")
    assert (c.t, c.p, c.p_reverse, c.verdict) == (math.inf, 0.0, 1.0, "a above b")
    assert "no spread in either model" in c.line()
    (c,) = lb.compare(frame_of({"a": [0.5, 0.5], "b": [0.5, 0.5]}), "a", "b", "mig.score")
    assert math.isnan(c.p) and c.verdict == "not resolved at n = 2"
    with pytest.raises(lb.LeaderboardError, match="no better direction"):
        lb.compare(frame_of({"a": [1, 2], "b": [1, 2]}, metric="factor_vae.num_active_dims"), "a", "b",
                   "factor_vae.num_active_dims")


def test_compare_is_per_dataset_and_names_what_is_unknown():
    frame = pd.concat([frame_of({"a": [0.5, 0.6, 0.55], "b": [0.1, 0.2, 0.15]}),
                       frame_of({"a": [0.1, 0.2], "b": [0.15, 0.1]}, dataset="shapes3d-procedural")])
    assert [c.dataset for c in lb.compare(frame, "a", "b", "mig.score")] == ["dsprites-procedural",
                                                                            "shapes3d-procedural"]
    assert [c.dataset for c in lb.compare(frame, "a", "b", "mig.score", dataset="shapes3d-procedural")] == [
        "shapes3d-procedural"]
    for args, message in (((frame, "a", "nope", "mig.score"), "model 'nope' has no row"),
                          ((frame, "a", "b", "sap.score"), "not a column"),
                          ((frame, "a", "b", "nope.score"), "no declared meaning"),
                          ((frame, "a", "b", "mig.score", "cars3d"), "dataset 'cars3d' has no row")):
        with pytest.raises(lb.LeaderboardError, match=message):
            lb.compare(*args)


def test_seeds_needed_is_the_first_n_with_the_power():
    assert seeds_needed(0.02, 0.01, 0.05) == 3
    for std_a, std_b, gap in ((0.02, 0.01, 0.05), (0.034, 0.010, 0.01), (0.11, 0.02, 0.08)):
        n = seeds_needed(std_a, std_b, gap)
        assert welch_power(std_a, std_b, gap, n) >= 0.8
        assert n == 2 or welch_power(std_a, std_b, gap, n - 1) < 0.8
    assert seeds_needed(0.01, 0.01, 0.0) is None and seeds_needed(0.01, 0.01, -0.1) is None
    assert seeds_needed(0.0, 0.0, 0.01) == 2 and seeds_needed(1.0, 1.0, 1e-3, max_n=50) is None


def test_power_matches_simulated_welch_tests():
    rng = np.random.default_rng(2)
    std_a, std_b, gap, n = 0.03, 0.01, 0.04, 4
    a = gap + std_a * rng.normal(size=(4000, n))
    b = std_b * rng.normal(size=(4000, n))
    rejected = stats.ttest_ind(a, b, axis=1, equal_var=False, alternative="greater").pvalue < 0.05
    assert rejected.mean() == pytest.approx(welch_power(std_a, std_b, gap, n), abs=0.03)


def test_tier_seeds_are_the_committed_sweep_files_seeds():
    from pathlib import Path

    from disentbench import sweep as sw

    sweeps = Path(__file__).resolve().parents[1] / "leaderboards" / "sweeps"
    for tier, seeds in tiers.TIER_SEEDS.items():
        assert sw.load_sweep(sweeps / f"{tier}.toml").seeds == seeds


def test_cli_compare_prints_one_line_per_dataset_and_one_line_errors(tmp_path, capsys):
    board = tmp_path / "leaderboards" / f"v{lb.LEADERBOARD_VERSION}"
    records = [make_record(model, seed, dataset, **{"mig.score": base + seed / 100, "multitask.rmse": 12 - base})
               for model, base in (("multi-head", 0.5), ("random", 0.0))
               for dataset in ("dsprites-procedural", "shapes3d-procedural") for seed in (0, 1, 2)]
    lb.add_records(records, board)
    assert main(["leaderboard", "compare", "multi-head", "random", "--metric", "mig.score", "--dir", str(board)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["dsprites-procedural", "shapes3d-procedural"]
    assert all("Welch t = " in line and "one-sided p = " in line and line.endswith("-> multi-head above random")
               for line in lines)
    assert main(["leaderboard", "compare", "random", "multi-head", "--metric", "multitask.rmse", "--dataset",
                 "shapes3d-procedural", "--dir", str(board), "--alpha", "0.01"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "difference -0.500 (lower is better)" in line and line.endswith("-> multi-head above random")
    for argv, message in ((["nope", "random", "--metric", "mig.score"], "model 'nope' has no row"),
                          (["multi-head", "random", "--metric", "nope.score"], "no declared meaning"),
                          (["multi-head", "random", "--metric", "mig.score", "--dataset", "cars3d"], "'cars3d'"),
                          (["multi-head", "random", "--metric", "mig.score", "--tier", "paper"], "no table"),
                          (["multi-head", "random", "--metric", "mig.score", "--alpha", "2"], "--alpha")):
        assert main(["leaderboard", "compare", *argv, "--dir", str(board)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert err.startswith("disentbench leaderboard: error:")
