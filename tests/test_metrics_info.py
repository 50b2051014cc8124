"""Closed-form and reference-parity tests of the information metrics and their estimators."""

from __future__ import annotations

import time

import numpy as np
import pytest

from disentbench import metrics
from disentbench.examples import DSPRITES_LIKE, controlled_family, example_representation
from disentbench.factors import FactorSpace
from disentbench.metrics import MetricWarning
from disentbench.metrics._info import discretize, entropies, mutual_info_matrix
from disentbench.metrics.modularity import modularity_from_mi
from disentbench.metrics.spearman import spearman_matrix

GRID = FactorSpace(("a", "b", "c"), (3, 4, 5))


def full_grid(repeats: int = 4) -> np.ndarray:
    """Every grid point ``repeats`` times: factors exactly independent, so cross MI is exactly 0."""
    return np.tile(GRID.all_classes(), (repeats, 1)).astype(float)


# --- estimators ---------------------------------------------------------------------------------


def test_discretize_matches_reference_histogram_digitize():
    x = np.random.default_rng(0).normal(size=(1000, 4)) * [1, 5, 0.1, 30]
    expected = np.stack(
        [np.digitize(x[:, j], np.histogram(x[:, j], 20)[1][:-1]) - 1 for j in range(x.shape[1])], axis=1
    )
    np.testing.assert_array_equal(discretize(x, 20), expected)
    assert discretize(x, 20).max() == 19 and discretize(x, 20).min() == 0


def test_discretize_constant_column_and_bad_arguments():
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    assert (discretize(x, 5)[:, 0] == 0).all()
    with pytest.raises(ValueError, match="n_bins"):
        discretize(x, 1)
    with pytest.raises(ValueError, match="discretizer"):
        discretize(x, 5, strategy="kmeans")
    with pytest.raises(ValueError, match="2-D"):
        discretize(np.arange(5.0), 5)


def test_quantile_discretizer_is_invariant_under_monotone_transforms():
    x = np.random.default_rng(1).normal(size=(600, 3))
    warped = np.exp(2 * x) + x**3
    np.testing.assert_array_equal(discretize(x, 20, strategy="quantile"), discretize(warped, 20, strategy="quantile"))
    counts = np.bincount(discretize(x, 20, strategy="quantile")[:, 0])
    assert counts.min() == counts.max() == 30  # equal frequency


def test_mutual_info_matrix_matches_sklearn_plugin_estimator():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(2)
    factors = rng.integers(0, 7, size=(3000, 3))
    codes = discretize(factors[:, [0, 1, 2, 0]] + rng.normal(size=(3000, 4)), 20)
    mi = mutual_info_matrix(codes, factors)
    expected = np.array([[mutual_info_score(factors[:, k], codes[:, j]) for k in range(3)] for j in range(4)])
    np.testing.assert_allclose(mi, expected, atol=1e-12)
    h = [mutual_info_score(factors[:, k], factors[:, k]) for k in range(3)]
    np.testing.assert_allclose(entropies(factors), h, atol=1e-12)


def test_mutual_info_closed_forms():
    v = np.repeat(np.arange(4), 25)[:, None]
    assert entropies(v)[0] == pytest.approx(np.log(4))
    mi = mutual_info_matrix(np.column_stack([v[:, 0], v[:, 0] // 2, np.zeros(100, int)]), v)
    np.testing.assert_allclose(mi[:, 0], [np.log(4), np.log(2), 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="same rows"):
        mutual_info_matrix(v[:50], v)
    with pytest.raises(ValueError, match="integer"):
        mutual_info_matrix(v.astype(float), v)


def test_plugin_mi_bias_of_independent_variables_is_small():
    rng = np.random.default_rng(3)
    n, bins, values = 10_000, 20, 10
    mi = mutual_info_matrix(discretize(rng.normal(size=(n, 5)), bins), rng.integers(0, values, size=(n, 2)))
    # E[plug-in MI] of independent variables ~ (bins-1)(values-1)/(2N) nats
    assert mi.mean() == pytest.approx((bins - 1) * (values - 1) / (2 * n), rel=0.35)


# --- MIG family ----------------------------------------------------------------------------------


def test_mig_and_modularity_match_the_reference_recipe():
    """disentanglement_lib's _compute_mig and modularity() restated with sklearn's MI on the same rows."""
    from sklearn.metrics import mutual_info_score

    classes, codes = example_representation(4000, seed=2)
    codes = codes[:, :-1]  # the reference divides by zero on a constant code in modularity's caller only
    binned = np.stack([np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in codes.T], axis=1)
    m = np.array([[mutual_info_score(classes[:, k], binned[:, j]) for k in range(5)] for j in range(codes.shape[1])])
    h = np.array([mutual_info_score(classes[:, k], classes[:, k]) for k in range(5)])
    ordered = np.sort(m, axis=0)[::-1]
    assert metrics.mig(classes, codes)["mig.score"] == pytest.approx(np.mean((ordered[0] - ordered[1]) / h), abs=1e-12)
    sq = m**2
    delta = (sq.sum(1) - sq.max(1)) / (sq.max(1) * (sq.shape[1] - 1))
    assert metrics.modularity(classes, codes)["modularity.score"] == pytest.approx(np.mean(1 - delta), abs=1e-12)


def test_perfect_code_scores_one_on_the_full_grid():
    f = full_grid()
    for name, key in [("mig", "mig.score"), ("mig_sup", "mig_sup.score"), ("jemmig", "jemmig.score"),
                      ("dcimig", "dcimig.score"), ("modularity", "modularity.score"), ("mcc", "mcc.score"),
                      ("irs", "irs.score")]:
        assert getattr(metrics, name)(f, f).scores[key] == pytest.approx(1.0, abs=1e-12), name
    result = metrics.infomec(f, f)
    assert result["infomec.infom"] == pytest.approx(1.0) and result["infomec.infoc"] == pytest.approx(1.0)


def test_perfect_code_mig_is_one_up_to_plugin_bias_on_sampled_rows():
    classes, codes = controlled_family("noise", 0.0, n_samples=2000)
    score = metrics.mig(classes, codes)["mig.score"]
    assert 0.98 < score < 1.0


def test_duplicated_code_kills_mig_but_not_modularity_metrics():
    f = full_grid()
    dup = np.concatenate([f, f], axis=1)
    assert metrics.mig(f, dup)["mig.score"] == pytest.approx(0.0, abs=1e-12)
    assert metrics.mig_sup(f, dup)["mig_sup.score"] == pytest.approx(1.0)
    assert metrics.dcimig(f, dup)["dcimig.score"] == pytest.approx(1.0)
    assert metrics.modularity(f, dup)["modularity.score"] == pytest.approx(1.0)
    # JEMMIG_k = H(z*, v) - I(z*; v) + I(z°; v) = 0 - 0 + H(v_k)  ->  score = 1 - mean H / (H + log 20)
    h = np.log(np.array(GRID.sizes, float))
    assert metrics.jemmig(f, dup)["jemmig.score"] == pytest.approx(1 - np.mean(h / (h + np.log(20))))
    # InfoC: each factor's NMI split evenly over 2 of L = 6 codes: (1/2 - 1/6) / (1 - 1/6) = 0.4
    assert metrics.infomec(f, dup)["infomec.infoc"] == pytest.approx(0.4)


def test_mig_gap_on_a_hand_built_code():
    f = full_grid()
    # code 0 = factor a exactly; code 1 = factor a merged into 2 groups {0}, {1, 2}
    codes = np.column_stack([f[:, 0], (f[:, 0] > 0).astype(float), f[:, 1], f[:, 2]])
    p = np.array([1, 2]) / 3
    i_merged = -(p * np.log(p)).sum()  # I(merged a; a) = H(merged a)
    result = metrics.mig(f, codes)
    expected_a = (np.log(3) - i_merged) / np.log(3)
    np.testing.assert_allclose(result.matrices["gap_per_factor"], [expected_a, 1.0, 1.0], atol=1e-12)
    assert result["mig.score"] == pytest.approx((expected_a + 2) / 3)


def test_dcimig_counts_each_factor_once():
    f = full_grid()
    # two codes both about factor a (gaps H(a) and H(merged a)); factors b, c uncoded
    codes = np.column_stack([f[:, 0], (f[:, 0] > 0).astype(float)])
    h = np.log(np.array(GRID.sizes, float))
    assert metrics.dcimig(f, codes)["dcimig.score"] == pytest.approx(h[0] / h.sum())


def test_constant_codes_warn_and_score_zero_not_nan():
    f = full_grid()
    for name in ["mig", "mig_sup", "jemmig", "dcimig", "modularity", "irs", "spearman", "mcc", "infomec"]:
        with pytest.warns(MetricWarning, match="constant"):
            result = getattr(metrics, name)(f, np.zeros((len(f), 3)))
        assert all(np.isfinite(v) for v in result.scores.values()), name
        assert any("constant" in w for w in result.warnings)
        if name == "jemmig":
            # no information: JEMMIG_k = H(v_k), and its normaliser H(v_k) + log(bins) is not tight
            h = np.log(np.array(GRID.sizes, float))
            assert result["jemmig.score"] == pytest.approx(1 - np.mean(h / (h + np.log(20))))
            continue
        headline = [v for k, v in result.scores.items() if not k.split(".")[1].startswith("n_")]
        assert max(headline) == pytest.approx(0.0, abs=1e-12), (name, result.scores)


def test_single_valued_factor_is_skipped_with_a_warning():
    f = full_grid()
    codes = f + 0.01 * np.random.default_rng(0).normal(size=f.shape)
    with_constant = np.column_stack([f, np.full(len(f), 7.0)])
    for name in ["mig", "mig_sup", "jemmig", "dcimig", "modularity", "irs", "spearman", "mcc", "infomec"]:
        base = getattr(metrics, name)(f, codes)
        with pytest.warns(MetricWarning, match="single value"):
            skipped = getattr(metrics, name)(with_constant, codes)
        for key, value in base.scores.items():
            assert skipped[key] == pytest.approx(value, abs=1e-9), (name, key)


def test_subsampling_is_seeded():
    classes, codes = example_representation(3000, seed=1)
    a = metrics.mig(classes, codes, n_samples=1000, random_state=5)
    b = metrics.mig(classes, codes, n_samples=1000, random_state=5)
    c = metrics.mig(classes, codes, n_samples=1000, random_state=6)
    assert a.scores == b.scores and a.scores != c.scores
    assert a.settings["n_rows_used"] == 1000 and a.settings["random_state"] == 5
    assert metrics.mig(classes, codes).settings["n_rows_used"] == 3000


def test_continuous_factor_flag_bins_the_factor():
    """Issue 17.2: unflagged float factors were 4000 silent classes (MIG 0.04); now refused, flagged ones binned."""
    rng = np.random.default_rng(4)
    factor = rng.uniform(size=(4000, 1))
    codes = np.column_stack([factor + 0.001 * rng.normal(size=factor.shape), rng.normal(size=4000)])
    with pytest.raises(ValueError, match=r"mig: factor columns \[0\] hold non-integer values .*discrete=False"):
        metrics.mig(factor, codes)
    assert metrics.mig(factor, codes, discrete=[False])["mig.score"] > 0.9


# --- modularity / explicitness -------------------------------------------------------------------


def test_modularity_formula_on_hand_built_matrices():
    mi = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    # delta = (1 + 1) / (4 * 2) = 0.25 for row 1; equal MI -> delta 1; zero row -> 0 (reference)
    np.testing.assert_allclose(modularity_from_mi(mi), [1.0, 0.75, 0.0, 0.0])
    np.testing.assert_allclose(modularity_from_mi(np.array([[0.3], [0.0]])), [1.0, 0.0])


def test_explicitness_reads_linear_codes_and_survives_constant_codes():
    classes, codes = controlled_family("noise", 0.1, n_samples=900)
    good = metrics.explicitness(classes, codes, n_train=600, n_test=300)
    assert good["explicitness.test"] > 0.9
    with pytest.warns(MetricWarning, match="constant"):
        padded = metrics.explicitness(classes, np.column_stack([codes, np.ones(900)]), n_train=600, n_test=300)
    assert padded["explicitness.test"] == pytest.approx(good["explicitness.test"], abs=1e-6)
    with pytest.warns(MetricWarning, match="no non-constant code"):
        dead = metrics.explicitness(classes, np.zeros((900, 2)), n_train=600, n_test=300)
    assert dead["explicitness.test"] == 0.5 and dead["explicitness.train"] == 0.5


def test_explicitness_too_few_samples_is_a_clear_error():
    classes, codes = controlled_family("noise", 0.1, n_samples=500)
    with pytest.raises(ValueError, match="too few samples"):
        metrics.explicitness(classes, codes)


def test_explicitness_matches_the_reference_recipe():
    """Same split, same classifier, same binarised AUC as disentanglement_lib's explicitness_per_factor."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MultiLabelBinarizer

    from disentbench.metrics._validation import rng_from, train_test_indices

    classes, codes = controlled_family("noise", 0.4, n_samples=1500, seed=3)
    train, test = train_test_indices(1500, 1000, 500, rng_from(0), metric="x")
    mean, std = codes[train].mean(0), codes[train].std(0)
    ours = metrics.explicitness(classes, codes, n_train=1000, n_test=500)
    expected = []
    for k in range(classes.shape[1]):
        clf = LogisticRegression().fit((codes[train] - mean) / std, classes[train, k])
        binarised = MultiLabelBinarizer().fit_transform(classes[test, k][:, None])
        expected.append(roc_auc_score(binarised, clf.predict_proba((codes[test] - mean) / std)))
    assert ours["explicitness.test"] == pytest.approx(np.mean(expected), abs=1e-9)


# --- IRS -----------------------------------------------------------------------------------------


def _reference_irs(gen_factors, latents, diff_quantile):
    """disentanglement_lib's scalable_disentanglement_score, restated for the parity check."""
    max_dev = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    cum = np.zeros((latents.shape[1], gen_factors.shape[1]))
    for i in range(gen_factors.shape[1]):
        values = np.unique(gen_factors[:, i])
        for value in values:
            block = latents[gen_factors[:, i] == value]
            cum[:, i] += np.percentile(np.abs(block - block.mean(axis=0)), diff_quantile * 100, axis=0)
        cum[:, i] /= len(values)
    scores = (1.0 - cum / max_dev[:, None]).max(axis=1)
    return np.average(scores, weights=max_dev)


def test_irs_matches_the_reference_computation():
    classes, codes = controlled_family("mixing", 0.3, n_samples=2000, seed=2)
    codes = np.column_stack([codes, 0.2 * np.random.default_rng(0).normal(size=2000)])
    binned = np.stack([np.digitize(c, np.histogram(c, 20)[1][:-1]) for c in classes.T.astype(float)], axis=1)
    expected = _reference_irs(binned, codes, 0.99)
    assert metrics.irs(classes, codes)["irs.score"] == pytest.approx(expected, abs=1e-12)


def test_irs_counts_active_codes_and_prefers_robust_codes():
    f = full_grid()
    noise = np.random.default_rng(5).normal(size=(len(f), 1))
    result = metrics.irs(f, np.column_stack([f[:, :1], noise, np.zeros(len(f))]))
    assert result["irs.n_active_codes"] == 2.0
    assert result.matrices["irs_matrix"][0, 0] == pytest.approx(1.0)
    assert result.matrices["irs_matrix"][1].max() < 0.5
    with pytest.raises(ValueError, match="diff_quantile"):
        metrics.irs(f, f, diff_quantile=0.0)


# --- Spearman / MCC ------------------------------------------------------------------------------


def test_spearman_matrix_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(6)
    factors = rng.integers(0, 5, size=(300, 2)).astype(float)
    codes = np.column_stack([factors[:, 0] + rng.normal(size=300), rng.normal(size=300)])
    rho, p = spearman_matrix(factors, codes)
    for j in range(2):
        for k in range(2):
            expected = spearmanr(codes[:, j], factors[:, k])
            assert rho[j, k] == pytest.approx(expected.statistic, abs=1e-12)
            assert p[j, k] == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)


def test_spearman_matching_counts_retrieved_factors():
    f = full_grid()
    rng = np.random.default_rng(7)
    # codes 0, 1 about factor a (one flipped), code 2 about c, code 3 noise
    codes = np.column_stack([f[:, 0], -f[:, 0] ** 3, f[:, 2], rng.normal(size=len(f))])
    result = metrics.spearman(f, codes)
    assert result["spearman.n_factors_retrieved"] == 2.0
    assert result["spearman.n_codes_matched"] == 3.0
    assert result["spearman.mean"] == pytest.approx(1.0) and result["spearman.std"] == pytest.approx(0.0)
    np.testing.assert_array_equal(result.matrices["matched_factor"], [0, 0, 2, -1])
    with pytest.warns(MetricWarning, match="no code"):
        none = metrics.spearman(f, rng.normal(size=(len(f), 2)))
    assert none["spearman.n_factors_retrieved"] == 0.0 and none["spearman.mean"] == 0.0


def test_mcc_is_one_for_a_permuted_monotone_code_and_penalises_missing_codes():
    f = full_grid()
    assert metrics.mcc(f, np.exp(f[:, [2, 0, 1]]))["mcc.score"] == pytest.approx(1.0)
    assert metrics.mcc(f, f[:, :1])["mcc.score"] == pytest.approx(1 / 3)


# --- InfoMEC -------------------------------------------------------------------------------------


def test_infomec_prunes_small_codes_and_reads_explicit_codes():
    classes, codes = controlled_family("noise", 0.0, n_samples=1200)
    tiny = 1e-3 * np.random.default_rng(8).normal(size=(1200, 1))
    with pytest.warns(MetricWarning, match="pruned"):
        result = metrics.infomec(classes, np.column_stack([codes, tiny]))
    assert list(result.matrices["code_active"]) == [True, True, True, False]
    assert result["infomec.infoe"] > 0.95 and result["infomec.infom"] > 0.95
    noise = metrics.infomec(classes, np.random.default_rng(9).uniform(size=(1200, 3)))
    assert noise["infomec.infoe"] < 0.05 and noise["infomec.infom"] < 0.3


# --- speed ---------------------------------------------------------------------------------------


def test_information_metrics_are_fast_on_the_reference_size():
    """10,000 samples x 10 codes over the dSprites grid; the issue asks for well under 0.1 s each.

    The bound here is loose (shared CI machines); benchmarks/ reports the real timings.
    """
    rng = np.random.default_rng(10)
    classes = DSPRITES_LIKE.sample_classes(10_000, rng)
    codes = np.column_stack([DSPRITES_LIKE.normalised(classes), rng.normal(size=(10_000, 5))])
    for name in ["mig", "mig_sup", "jemmig", "dcimig", "modularity", "irs", "spearman", "mcc"]:
        getattr(metrics, name)(classes, codes)  # warm imports
        times = []
        for _ in range(3):
            start = time.perf_counter()
            getattr(metrics, name)(classes, codes)
            times.append(time.perf_counter() - start)
        assert min(times) < 0.5, (name, times)
