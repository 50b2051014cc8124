"""Predictor and intervention metrics: DCI, SAP, informativeness, FactorVAE, BetaVAE."""

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from disentbench.metrics import MetricWarning, compute_metrics
from disentbench.metrics._linear_svc_1d import fit as svc_fit
from disentbench.metrics.beta_vae import beta_vae
from disentbench.metrics.dci import completeness, dci, disentanglement
from disentbench.metrics.factor_vae import factor_vae
from disentbench.metrics.informativeness import informativeness
from disentbench.metrics.sap import sap, squared_correlation, top_two_gap

SIZES = (3, 4, 5)
SMALL = {"n_train": 600, "n_test": 300}


def grid_table(repeats=40, sizes=SIZES, seed=0):
    """Every factor combination ``repeats`` times (a table covering the grid), shuffled."""
    grid = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    rows = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(grid)), repeats))
    return grid[rows].astype(float)


def perfect(f, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    return f / f.max(axis=0) + noise * rng.normal(size=f.shape)


def rotated(z, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(z.shape[1], z.shape[1])))
    return z @ q


FACTORS = grid_table()  # 2400 rows


# --- DCI closed forms ---------------------------------------------------------------------------------------


def test_dci_closed_forms():
    assert disentanglement(np.eye(4)) == pytest.approx(1.0, abs=1e-8)
    assert completeness(np.eye(4)) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement(np.ones((4, 4))) == pytest.approx(0.0, abs=1e-8)
    assert completeness(np.ones((4, 4))) == pytest.approx(0.0, abs=1e-8)
    for n_factors in (3, 5, 8):
        r = np.zeros((4, n_factors))
        r[0, :2] = 0.5  # one code, importance split over two factors
        assert disentanglement(r) == pytest.approx(1 - math.log(2) / math.log(n_factors), abs=1e-8)
    # all-zero importance: uniform weights, score 0 (never NaN)
    assert disentanglement(np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-8)


def test_dci_matches_scipy_entropy_formula():
    r = np.random.default_rng(0).random((7, 4))
    d = np.sum((1 - scipy.stats.entropy(r.T + 1e-11, base=4)) * r.sum(1) / r.sum())
    c = np.sum((1 - scipy.stats.entropy(r + 1e-11, base=7)) * r.sum(0) / r.sum())
    assert disentanglement(r) == pytest.approx(d, abs=1e-12)
    assert completeness(r) == pytest.approx(c, abs=1e-12)


# --- DCI on representations (fast estimator) ----------------------------------------------------------------


def _dci(z, **kw):
    return dci(FACTORS, z, estimator="hist_gbt", n_jobs=1, **{**SMALL, **kw})


def test_dci_perfect_vs_rotated_duplicated_noisy():
    z = perfect(FACTORS)
    good = _dci(z)
    assert good["dci.disentanglement"] > 0.85 and good["dci.completeness"] > 0.85
    assert good["dci.informativeness_test"] > 0.95
    assert good.matrices["importance"].shape == (3, 3)
    assert _dci(rotated(z))["dci.disentanglement"] < good["dci.disentanglement"] - 0.2
    # a second noisy copy of every code: importance splits over two codes per factor
    assert _dci(np.hstack([z, perfect(FACTORS, seed=9)]))["dci.completeness"] < good["dci.completeness"] - 0.1
    noisy = _dci(z + np.random.default_rng(2).normal(size=z.shape))
    assert noisy["dci.informativeness_test"] < good["dci.informativeness_test"] - 0.2


def test_dci_constant_code_has_zero_importance_and_warns():
    z = np.hstack([perfect(FACTORS), np.zeros((len(FACTORS), 1))])
    with pytest.warns(MetricWarning, match="constant codes \\[3\\]"):
        res = _dci(z)
    assert np.all(res.matrices["importance"][3] == 0)
    assert all(math.isfinite(v) for v in res.scores.values())


def test_dci_single_valued_factor_skipped():
    f = np.hstack([FACTORS, np.ones((len(FACTORS), 1))])
    with pytest.warns(MetricWarning, match="factor 3 has a single value"):
        res = dci(f, perfect(FACTORS), estimator="hist_gbt", n_jobs=1, **SMALL)
    assert res.matrices["factor_index"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("estimator", ["lasso", "random_forest"])
def test_dci_other_estimators_rank_perfect_above_rotated(estimator):
    z = perfect(FACTORS)
    good = dci(FACTORS, z, estimator=estimator, n_jobs=1, **SMALL)
    bad = dci(FACTORS, rotated(z), estimator=estimator, n_jobs=1, **SMALL)
    assert good["dci.disentanglement"] > bad["dci.disentanglement"] + 0.1


def test_dci_reference_gbt_small():
    f = FACTORS[:, :2]
    res = dci(f, perfect(f), estimator="gbt", n_train=400, n_test=200, n_jobs=2)
    assert res["dci.disentanglement"] > 0.9 and res["dci.informativeness_test"] > 0.9
    assert res.settings["estimator"] == "gbt"


def test_dci_seed_and_n_jobs_do_not_change_scores():
    z = rotated(perfect(FACTORS))
    a = _dci(z, random_state=3)
    b = dci(FACTORS, z, estimator="hist_gbt", n_jobs=2, random_state=3, **SMALL)
    assert a.scores == b.scores
    np.testing.assert_array_equal(a.matrices["importance"], b.matrices["importance"])
    assert _dci(z, random_state=4).scores != a.scores


def test_dci_continuous_factor_uses_regression():
    rng = np.random.default_rng(0)
    f = rng.random((900, 2))
    res = dci(f, f + 0.01 * rng.normal(size=f.shape), discrete=False, estimator="hist_gbt", n_jobs=1, **SMALL)
    assert res["dci.informativeness_test"] > 0.9  # R^2
    assert res["dci.disentanglement"] > 0.8


def test_dci_preset_fast_uses_hist_gbt():
    res = compute_metrics(FACTORS, perfect(FACTORS), "dci", preset="fast", overrides={"dci": dict(SMALL)})
    assert res["dci"].settings["estimator"] == "hist_gbt"


def test_too_few_samples_raise():
    with pytest.raises(ValueError, match="too few samples"):
        dci(FACTORS[:100], perfect(FACTORS[:100]))
    with pytest.raises(ValueError, match="too few samples"):
        sap(FACTORS[:100], perfect(FACTORS[:100]))
    with pytest.raises(ValueError, match="too few samples"):
        informativeness(FACTORS[:100], perfect(FACTORS[:100]))
    with pytest.raises(ValueError, match="unknown estimator"):
        dci(FACTORS, perfect(FACTORS), estimator="xgboost", **SMALL)


# --- SAP ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_exact_linear_svc_matches_liblinear(n_classes):
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 500)
    x = y * 0.7 + rng.normal(size=500) + 2.0
    w, b = svc_fit(x, y, n_classes, C=0.01)
    ref = LinearSVC(C=0.01, class_weight="balanced", tol=1e-10, max_iter=100_000).fit(x[:, None], y)
    np.testing.assert_allclose(w, ref.coef_[:, 0], atol=1e-6)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-6)


def test_sap_scores_move_the_right_way():
    z = perfect(FACTORS)
    good = sap(FACTORS, z, **SMALL)["sap.score"]
    assert good > 0.2  # a 1-D linear classifier separates only the extreme classes of a 5-class factor
    assert sap(FACTORS, np.hstack([z, z]), **SMALL)["sap.score"] < 0.05  # duplicated codes: no gap
    assert sap(FACTORS, rotated(z), **SMALL)["sap.score"] < good
    noise = np.random.default_rng(5).normal(size=z.shape)
    assert sap(FACTORS, noise, **SMALL)["sap.score"] < 0.1


def test_sap_continuous_is_squared_correlation_gap():
    rng = np.random.default_rng(0)
    f = rng.random((1000, 2))
    z = np.column_stack([f[:, 0], f[:, 1] + 0.5 * rng.normal(size=1000), np.zeros(1000)])
    with pytest.warns(MetricWarning, match="constant codes"):
        res = sap(f, z, discrete=False, **SMALL)
    train = res.matrices["score"]
    assert train[2].tolist() == [0.0, 0.0]
    assert res["sap.score"] == pytest.approx(np.mean(top_two_gap(train)))
    s = squared_correlation(z[:, :2], f)
    assert s[0, 0] == pytest.approx(1.0) and s[1, 1] == pytest.approx(np.corrcoef(z[:, 1], f[:, 1])[0, 1] ** 2)


# --- informativeness ----------------------------------------------------------------------------------------


def test_informativeness_accuracy_and_nmse():
    z = perfect(FACTORS)
    assert informativeness(FACTORS, z, n_jobs=1, **SMALL)["informativeness.accuracy"] > 0.95
    noisy = z + np.random.default_rng(1).normal(size=z.shape)
    assert informativeness(FACTORS, noisy, n_jobs=1, **SMALL)["informativeness.score"] < 0.7
    rng = np.random.default_rng(0)
    f = rng.random((900, 2))
    res = informativeness(f, np.column_stack([f[:, 0], rng.random(900)]), discrete=False, n_jobs=1, **SMALL)
    per = 1 - res.matrices["test_score"]
    assert per[0] < 0.05 and per[1] > 0.8  # factor 1 not encoded: NMSE near 1
    assert res["informativeness.nmse"] == pytest.approx(per.mean())


# --- FactorVAE / BetaVAE ------------------------------------------------------------------------------------

FAST_VOTES = {"n_train": 1000, "n_eval": 500, "n_variance": 2000}


def test_factor_vae_perfect_random_and_seeds():
    z = perfect(FACTORS)
    res = factor_vae(FACTORS, z, **FAST_VOTES)
    assert res["factor_vae.eval_accuracy"] > 0.99 and res["factor_vae.num_active_dims"] == 3
    noise = np.random.default_rng(0).normal(size=(len(FACTORS), 3))
    chance = factor_vae(FACTORS, noise, **FAST_VOTES)["factor_vae.eval_accuracy"]
    assert chance < 0.5  # 3 factors: chance 1/3
    assert factor_vae(FACTORS, z, random_state=7, **FAST_VOTES).scores == factor_vae(
        FACTORS, z, random_state=7, **FAST_VOTES).scores


def test_factor_vae_pruning_counts_active_dims_and_all_pruned_scores_zero():
    z = np.hstack([perfect(FACTORS), 0.001 * np.random.default_rng(0).normal(size=(len(FACTORS), 2))])
    res = factor_vae(FACTORS, z, **FAST_VOTES)
    assert res["factor_vae.num_active_dims"] == 3
    assert res.matrices["active"].tolist() == [True, True, True, False, False]
    with pytest.warns(MetricWarning, match="all pruned"):
        zero = factor_vae(FACTORS, 0.01 * z, **FAST_VOTES)
    assert zero.scores == {"factor_vae.train_accuracy": 0.0, "factor_vae.eval_accuracy": 0.0,
                           "factor_vae.num_active_dims": 0.0}


def test_factor_vae_small_groups_warn():
    f = grid_table(repeats=2)  # 2 * 20 rows per value of factor 0 (< 64)
    with pytest.warns(MetricWarning, match="batches repeat rows"):
        factor_vae(f, perfect(f), **FAST_VOTES)


def test_beta_vae_perfect_random_and_seeds():
    z = perfect(FACTORS)
    opts = {"n_train": 1000, "n_eval": 500}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        res = beta_vae(FACTORS, z, **opts)
        noise = np.random.default_rng(0).normal(size=(len(FACTORS), 3))
        chance = beta_vae(FACTORS, noise, **opts)
        again = beta_vae(FACTORS, z, **opts)
    assert res["beta_vae.eval_accuracy"] > 0.95
    assert chance["beta_vae.eval_accuracy"] < 0.5
    assert again.scores == res.scores


def test_factor_groups_draw_rows_with_the_value_and_reach_every_row():
    from disentbench.metrics._groups import FactorGroups

    rng = np.random.default_rng(0)
    labels = np.stack([rng.integers(0, 3, 200), rng.integers(0, 5, 200)], axis=1)
    groups = FactorGroups(labels)
    assert groups.group_sizes(1).tolist() == np.bincount(labels[:, 1]).tolist()
    for k in range(2):
        for v in range(groups.n_values[k]):
            rows = groups.draw(np.full(3000, k), np.full(3000, v), rng)
            assert set(rows.tolist()) == set(np.flatnonzero(labels[:, k] == v).tolist())
