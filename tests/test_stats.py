"""Statistics against numpy/scipy references and planted effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from polyglot_kedro.stats import bootstrap_means, holm, paired_bootstrap, summarize


@pytest.fixture
def likert() -> np.ndarray:
    # 20 items x 3 seeds of judge scores in 1..6
    return np.random.default_rng(7).integers(1, 7, 60).astype(float)


def test_mean_and_sd_match_numpy(likert):
    s = summarize(likert, n_boot=200, seed=0)
    assert s.n == 60
    assert s.mean == pytest.approx(np.mean(likert))
    assert s.sd == pytest.approx(np.std(likert, ddof=1))


@pytest.mark.parametrize("seed", [0, 11])
def test_ci_matches_scipy_percentile_bootstrap(likert, seed):
    ours = summarize(likert, n_boot=1000, seed=seed)
    ref = sps.bootstrap(
        (likert,), np.mean, n_resamples=1000, method="percentile", vectorized=True,
        confidence_level=0.95, random_state=np.random.default_rng(seed),
    ).confidence_interval
    assert ours.ci_low == pytest.approx(ref.low, abs=1e-9)
    assert ours.ci_high == pytest.approx(ref.high, abs=1e-9)


def test_ci_independent_draws_agree_with_scipy_within_monte_carlo_error(likert):
    ours = summarize(likert, n_boot=1000, seed=1)
    ref = sps.bootstrap((likert,), np.mean, n_resamples=1000, method="percentile",
                        random_state=np.random.default_rng(999)).confidence_interval
    se = np.std(likert, ddof=1) / np.sqrt(likert.size)
    assert abs(ours.ci_low - ref.low) < 0.25 * se
    assert abs(ours.ci_high - ref.high) < 0.25 * se
    assert ours.ci_low < ours.mean < ours.ci_high


def test_bootstrap_is_seeded():
    x = np.arange(10.0)
    assert np.array_equal(bootstrap_means(x, n_boot=50, seed=3), bootstrap_means(x, n_boot=50, seed=3))
    assert not np.array_equal(bootstrap_means(x, n_boot=50, seed=3), bootstrap_means(x, n_boot=50, seed=4))


def test_small_groups():
    one = summarize([4.0], n_boot=100)
    assert one.n == 1 and one.mean == 4.0 and np.isnan(one.sd) and one.ci_low == one.ci_high == 4.0
    empty = summarize([], n_boot=100)
    assert empty.n == 0 and np.isnan(empty.mean)


def test_nan_rejected():
    with pytest.raises(ValueError, match="NaN"):
        summarize([1.0, np.nan])


def test_paired_bootstrap_detects_planted_difference():
    rng = np.random.default_rng(5)
    a = rng.integers(1, 7, 90).astype(float)
    b = np.clip(a + rng.choice([0.0, 1.0, 1.0, 2.0], size=90), 1, 6)  # b better by ~+0.9
    res = paired_bootstrap(a, b, n_boot=1000, seed=0)
    assert res.diff == pytest.approx(np.mean(b - a))
    assert res.diff > 0.5
    assert res.ci_low > 0
    assert res.p_value < 0.01


def test_paired_bootstrap_null_not_significant():
    rng = np.random.default_rng(6)
    a = rng.integers(1, 7, 90).astype(float)
    b = a + rng.choice([-1.0, 0.0, 1.0], size=90)  # symmetric noise, no effect
    res = paired_bootstrap(a, b, n_boot=1000, seed=0)
    assert res.ci_low < 0 < res.ci_high
    assert res.p_value > 0.05


def test_paired_bootstrap_p_value_agrees_with_paired_t_test():
    rng = np.random.default_rng(8)
    a = rng.normal(0, 1, 200)
    b = a + rng.normal(0.15, 1, 200)
    res = paired_bootstrap(a, b, n_boot=4000, seed=1)
    t = sps.ttest_rel(b, a)
    assert res.p_value == pytest.approx(t.pvalue, abs=0.03)


def test_paired_bootstrap_needs_aligned_pairs():
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_holm_matches_definition():
    p = [0.01, 0.04, np.nan, 0.03]
    adj = holm(p)
    assert adj[0] == pytest.approx(0.03)
    assert adj[3] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[2])
