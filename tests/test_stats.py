"""Statistics against numpy/scipy references and planted effects."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from polyglot_kedro.stats import (
    adjust_pvalues,
    bootstrap_means,
    cluster_bootstrap_ci,
    cluster_bootstrap_distribution,
    compare_mixes,
    decide_non_inferiority,
    holm,
    judge_agreement,
    length_correlation,
    minimum_detectable_difference,
    non_inferiority,
    paired_permutation_test,
    paper_seed_mean_ci,
    plateau_point,
    pool_languages,
    prompt_means,
    seed_means,
    summarize,
)


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


def test_holm_matches_definition():
    p = [0.01, 0.04, np.nan, 0.03]
    adj = holm(p)
    assert adj[0] == pytest.approx(0.03)
    assert adj[3] == pytest.approx(0.06)
    assert adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[2])


# --- prompt-level statistics (issue 16) ------------------------------------


def _tidy(item_scores: dict) -> pd.DataFrame:
    """{item: [score per seed]} -> tidy rows (item_id, seed, score)."""
    rows = [(i, s, v) for i, vals in item_scores.items() for s, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["item_id", "seed", "score"])


def _planted(n_items: int, n_seeds: int, *, item_sd: float, seed_sd: float, shift: float = 0.0, rng_seed: int = 0):
    rng = np.random.default_rng(rng_seed)
    effect = rng.normal(0, item_sd, n_items)
    return pd.DataFrame({
        "item_id": np.repeat(np.arange(n_items), n_seeds),
        "seed": np.tile(np.arange(n_seeds), n_items),
        "score": np.repeat(effect, n_seeds) + shift + rng.normal(0, seed_sd, n_items * n_seeds),
    })


@pytest.mark.parametrize("items", [
    {"a": [1.0, 2.0], "b": [4.0, 4.0], "c": [0.0, 6.0]},  # 3 items x 2 seeds
    {"a": [1.0, 2.0, 3.0], "b": [5.0], "c": [0.0, 6.0]},  # unequal seed counts
])
def test_cluster_bootstrap_matches_enumerated_resamples(items):
    """All 27 ordered resamples of 3 prompts, each with its seeds, are equally likely."""
    df = _tidy(items)
    groups = list(items.values())
    exact = np.array([np.mean(np.concatenate([groups[k] for k in draw]))
                      for draw in itertools.product(range(3), repeat=3)])
    support, counts = np.unique(np.round(exact, 12), return_counts=True)
    probs = counts / 27

    B = 20_000
    boot = cluster_bootstrap_distribution(df, n_resamples=B, seed=3)
    # every resample is one of the enumerated ones ...
    assert np.all(np.isclose(boot[:, None], support[None, :], atol=1e-9).any(axis=1))
    # ... and each comes up as often as the enumeration says
    freq = np.array([np.isclose(boot, v, atol=1e-9).mean() for v in support])
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / B))

    # the interval is the enumerated distribution's quantiles (premise: no CDF step near them)
    level = 0.8
    cdf = np.cumsum(probs)
    for q in ((1 - level) / 2, (1 + level) / 2):
        assert np.min(np.abs(cdf - q)) > 0.01
    lo_exact = support[np.argmax(cdf >= (1 - level) / 2)]
    hi_exact = support[np.argmax(cdf >= (1 + level) / 2)]
    ci = cluster_bootstrap_ci(df, n_resamples=B, confidence=level, seed=3)
    assert ci.ci_low == pytest.approx(lo_exact) and ci.ci_high == pytest.approx(hi_exact)
    # the statistic is the mean over all rows (= mean of prompt means only with equal seed counts)
    assert ci.mean == pytest.approx(df["score"].mean())
    assert (ci.n_items, ci.n_rows) == (3, len(df))


def test_cluster_equals_seed_mean_mode_with_equal_seed_counts():
    df = _planted(25, 3, item_sd=1.0, seed_sd=0.5)
    a = cluster_bootstrap_ci(df, mode="cluster", n_resamples=2000, seed=5)
    b = cluster_bootstrap_ci(df, mode="seed_mean", n_resamples=2000, seed=5)
    assert (a.mean, a.ci_low, a.ci_high) == pytest.approx((b.mean, b.ci_low, b.ci_high), abs=1e-12)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_seed_mean_mode_is_scipy_bootstrap_on_prompt_means(method):
    df = _planted(40, 3, item_sd=1.0, seed_sd=0.7, rng_seed=2)
    df["score"] = np.exp(df["score"])  # skewed, so BCa differs from percentile
    pm = df.groupby("item_id")["score"].mean().to_numpy()
    ours = cluster_bootstrap_ci(df, mode="seed_mean", method=method, n_resamples=3000, seed=11)
    ref = sps.bootstrap((pm,), np.mean, n_resamples=3000, method="BCa" if method == "bca" else "percentile",
                        rng=np.random.default_rng(11)).confidence_interval
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_cluster_ci_agrees_with_scipy_on_prompt_means_with_independent_draws():
    df = _planted(60, 3, item_sd=1.0, seed_sd=0.5, rng_seed=4)
    pm = prompt_means(df).to_numpy()
    ours = cluster_bootstrap_ci(df, n_resamples=20_000, seed=1)
    ref = sps.bootstrap((pm,), np.mean, n_resamples=20_000, method="percentile",
                        rng=np.random.default_rng(999)).confidence_interval
    se = pm.std(ddof=1) / np.sqrt(pm.size)
    assert abs(ours.ci_low - ref.low) < 0.05 * se and abs(ours.ci_high - ref.high) < 0.05 * se


def test_cluster_ci_is_wider_than_row_level_when_seeds_repeat_the_prompt():
    # the point: 3 seeds of a prompt are not 3 independent observations
    df = _planted(30, 3, item_sd=1.0, seed_sd=0.1, rng_seed=6)
    rows = summarize(df["score"].to_numpy(), n_boot=4000, seed=0)
    clus = cluster_bootstrap_ci(df, n_resamples=4000, seed=0)
    assert (clus.ci_high - clus.ci_low) > 1.4 * (rows.ci_high - rows.ci_low)


def test_cluster_ci_seeded_small_and_bad_input():
    df = _planted(10, 2, item_sd=1.0, seed_sd=1.0)
    assert cluster_bootstrap_ci(df, seed=2) == cluster_bootstrap_ci(df, seed=2)
    assert cluster_bootstrap_ci(df, seed=2).ci_low != cluster_bootstrap_ci(df, seed=3).ci_low
    one = cluster_bootstrap_ci(_tidy({"x": [2.0, 4.0]}))
    assert one.mean == 3.0 and np.isnan(one.ci_low) and np.isnan(one.ci_high)
    bad = df.copy()
    bad.loc[3, "score"] = np.nan
    with pytest.raises(ValueError, match=r"'score'.*item_id=1"):
        cluster_bootstrap_ci(bad)
    with pytest.raises(ValueError, match="missing columns"):
        cluster_bootstrap_ci(df.drop(columns="item_id"))
    with pytest.raises(ValueError, match="missing ids"):
        cluster_bootstrap_ci(df.assign(item_id=df["item_id"].where(df["item_id"] != 2)))
    with pytest.raises(ValueError, match="mode"):
        cluster_bootstrap_ci(df, mode="rows")
    assert list(seed_means(df)) == pytest.approx(df.groupby("seed")["score"].mean().tolist())


def test_permutation_test_exact_by_hand():
    # 16 sign vectors of (1, 2, -0.5, 3): |sum| >= 5.5 only for (+,+,-,+), (+,+,+,+) and their negatives
    r = paired_permutation_test([1.0, 2.0, -0.5, 3.0], n_boot=500)
    assert r.method == "exact" and r.n_resamples == 16
    assert r.p_value == 4 / 16
    assert r.p_floor == 2 / 16
    assert r.mean_diff == pytest.approx(5.5 / 4)
    assert paired_permutation_test(np.zeros(5), n_boot=200).p_value == 1.0


@pytest.mark.parametrize("n", [2, 7, 12, 15])
def test_permutation_test_exact_matches_scipy(n):
    d = np.random.default_rng(n).normal(0.4, 1.0, n)
    ours = paired_permutation_test(d, n_boot=500)
    ref = sps.permutation_test((d,), lambda x, axis=-1: x.mean(axis=axis), permutation_type="samples",
                               n_resamples=np.inf, vectorized=True)
    assert ours.method == "exact" and ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    ties = np.array([1, -1, 2, 1, 0, 3, -2, 1, 1, 0, 1, 2]) / 3  # seed means of Likert scores tie often
    ref = sps.permutation_test((ties,), lambda x, axis=-1: x.mean(axis=axis), permutation_type="samples",
                               n_resamples=np.inf, vectorized=True)
    assert paired_permutation_test(ties, n_boot=200).p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_permutation_test_monte_carlo_resolution_and_floor():
    d = np.random.default_rng(3).normal(0.4, 1.0, 12)
    exact = paired_permutation_test(d, n_boot=500).p_value
    B = 20_000
    mc = paired_permutation_test(d, exact_max_n=0, n_resamples=B, seed=1, n_boot=500)
    assert mc.method == "monte_carlo" and mc.p_floor == 1 / (B + 1)
    assert abs(mc.p_value - exact) < 4 * np.sqrt(exact * (1 - exact) / B)
    strong = np.random.default_rng(4).normal(1.0, 0.5, 60)  # no random sign vector reaches it
    r = paired_permutation_test(strong, n_resamples=10_000, n_boot=500)
    assert paired_permutation_test(strong[:31], n_boot=200).method == "monte_carlo"  # default: exact up to 30
    assert r.method == "monte_carlo" and r.p_value == r.p_floor == 1 / 10_001
    assert r.ci_low > 0.5 and r.mde < 0.5


def test_compare_mixes_pairs_on_the_prompt():
    a = _planted(20, 3, item_sd=1.0, seed_sd=0.3, rng_seed=1)
    b = a.copy()
    b["score"] = b["score"] + 0.5 + np.random.default_rng(2).normal(0, 0.3, len(b))
    b = b[b["item_id"] != 0]  # prompt 0 has no b rows: unpaired
    r = compare_mixes(a, b, n_resamples=5000, n_boot=1000)
    pm_a, pm_b = a.groupby("item_id")["score"].mean(), b.groupby("item_id")["score"].mean()
    hand = (pm_b - pm_a.loc[pm_b.index]).to_numpy()
    assert r.n == 19 and r.n_unpaired == 1  # prompts, not 57 rows
    assert r.mean_diff == pytest.approx(hand.mean())
    assert r.sd_diff == pytest.approx(hand.std(ddof=1))
    assert r.p_value < 0.01 and r.ci_low > 0
    with pytest.raises(ValueError, match="no prompt in both"):
        compare_mixes(a[a["item_id"] < 5], b[b["item_id"] >= 5])


@pytest.mark.parametrize(("ours", "theirs"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_pvalues_match_statsmodels(ours, theirs):
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = np.array([0.001, 0.02, np.nan, 0.04, 0.03, 0.5, 0.0004, np.nan, 0.2, 0.011])
    ok = ~np.isnan(p)
    adj = adjust_pvalues(p, method=ours)
    assert np.isnan(adj[~ok]).all()
    assert adj[ok] == pytest.approx(multipletests(p[ok], method=theirs)[1], abs=1e-12)


def test_adjust_pvalues_bad_input():
    with pytest.raises(ValueError, match="method"):
        adjust_pvalues([0.1], method="bonf")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([0.1, 1.2])
    assert np.isnan(adjust_pvalues([np.nan, np.nan], method="bh")).all()


def test_non_inferiority_three_cases():
    rng = np.random.default_rng(9)
    clearly_ok = non_inferiority(rng.normal(0.0, 0.1, 200), delta=0.05, n_resamples=4000)
    clearly_worse = non_inferiority(rng.normal(-0.3, 0.1, 200), delta=0.05, n_resamples=4000)
    undecided = non_inferiority(rng.normal(-0.05, 0.3, 20), delta=0.05, n_resamples=4000)
    assert clearly_ok.decision == "non_inferior" and clearly_ok.lower > -0.05
    assert clearly_worse.decision == "worse" and clearly_worse.upper < -0.05
    assert undecided.decision == "undecided" and undecided.lower < -0.05 < undecided.upper
    # the one-sided 95% bound is near the normal-theory one, mean - 1.645 se
    d = rng.normal(0.0, 0.1, 400)
    r = non_inferiority(d, delta=0.05, n_resamples=10_000)
    se = d.std(ddof=1) / np.sqrt(d.size)
    assert r.lower == pytest.approx(d.mean() - sps.norm.ppf(0.95) * se, abs=0.15 * se)
    assert [decide_non_inferiority(lo, hi, 0.1) for lo, hi in [(-0.05, 0.2), (-0.5, -0.2), (-0.2, 0.1)]] == [
        "non_inferior", "worse", "undecided"]
    assert decide_non_inferiority(np.nan, np.nan, 0.1) == "undecided"


def _dose_response(means: dict, n_items: int, *, noise: float, rng_seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    prompt_effect = rng.normal(0, 0.5, n_items)  # shared by every mix: pairing removes it
    frames = []
    for mix, mu in means.items():
        df = pd.DataFrame({"item_id": np.repeat(np.arange(n_items), 3), "seed": np.tile([0, 1, 2], n_items)})
        df["score"] = mu + prompt_effect[df["item_id"]] + rng.normal(0, noise, len(df))
        frames.append(df.assign(mix=mix))
    return pd.concat(frames, ignore_index=True)


LEVELS = {"mono": 1, "multi2": 2, "multi3": 3, "multi4": 4, "multi5": 5}


def test_plateau_point_on_a_dose_response():
    means = {"mono": 0.40, "multi2": 0.55, "multi3": 0.70, "multi4": 0.70, "multi5": 0.71, "full": 0.70}
    df = _dose_response(means, 150, noise=0.1)
    r = plateau_point(df, LEVELS, delta=0.05, full_mixes=["full"], n_resamples=2000)
    assert (r.label, r.plateau) == ("3", 3)
    assert r.decisions == {1: "worse", 2: "worse", 3: "non_inferior", 4: "non_inferior", 5: "non_inferior"}
    steps = r.steps_frame()
    assert set(steps.loc[steps["level"] == 3, "reference"]) == {"multi4", "multi5", "full"}
    assert (steps["n"] == 150).all()
    # without the full mix the largest level has nothing to be compared with
    r2 = plateau_point(df[df["mix"] != "full"], LEVELS, delta=0.05, n_resamples=2000)
    assert r2.label == "3" and 5 not in r2.decisions


def test_plateau_point_undecided_and_not_reached():
    noisy = _dose_response({m: 0.5 for m in LEVELS}, 4, noise=1.0, rng_seed=1)
    r = plateau_point(noisy, LEVELS, delta=0.05, n_resamples=2000)
    assert r.label == "undecided" and r.plateau is None
    rising = _dose_response({m: 0.2 * lvl for m, lvl in LEVELS.items()}, 100, noise=0.1)
    assert plateau_point(rising, LEVELS, delta=0.05, n_resamples=2000).label == "not reached"
    with pytest.raises(ValueError, match="share level"):
        plateau_point(rising, {"mono": 1, "other": 1}, delta=0.05)


def test_pool_languages_makes_prompt_ids_unique():
    df = pd.concat([_tidy({0: [1.0], 1: [2.0]}).assign(lang=lang) for lang in ("de", "fr")])
    pooled = pool_languages(df)
    assert pooled["item_id"].nunique() == 4 and sorted(pooled["item_id"])[0] == "de/0"
    assert df["item_id"].nunique() == 2  # input untouched


def test_minimum_detectable_difference_matches_statsmodels_power():
    power_mod = pytest.importorskip("statsmodels.stats.power")
    sd, n = 0.8, 50
    es = power_mod.NormalIndPower().solve_power(nobs1=n, alpha=0.05, power=0.8, ratio=0)
    assert minimum_detectable_difference(sd, n) == pytest.approx(es * sd, rel=1e-3)
    assert minimum_detectable_difference(sd, 4 * n) == pytest.approx(minimum_detectable_difference(sd, n) / 2)
    assert np.isnan(minimum_detectable_difference(sd, 1))


def _seaborn_bootstrap_ci_by_hand(x, n_boot, seed, width):
    # seaborn.algorithms.bootstrap (func="mean", no units) + _statistics._percentile_interval
    rng = np.random.default_rng(seed)
    boot = [x.take(rng.integers(0, len(x), len(x), dtype=np.intp)).mean() for _ in range(n_boot)]
    edge = (100 - width) / 2
    return np.nanpercentile(boot, [edge, 100 - edge])


def test_paper_seed_mean_ci_reproduces_seaborn():
    per_seed = np.array([0.61, 0.55, 0.70])
    r = paper_seed_mean_ci(per_seed, seed=7)
    assert r.mean == pytest.approx(per_seed.mean()) and r.n_seeds == 3
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(_seaborn_bootstrap_ci_by_hand(per_seed, 1000, 7, 95)))
    assert np.isnan(paper_seed_mean_ci([0.5]).ci_low)


def test_paper_seed_mean_ci_against_installed_seaborn():
    statistics = pytest.importorskip("seaborn._statistics")
    per_seed = pd.DataFrame({"y": [0.61, 0.55, 0.70]})
    theirs = statistics.EstimateAggregator("mean", "ci", n_boot=1000, seed=7)(per_seed, "y")
    ours = paper_seed_mean_ci(per_seed["y"], seed=7)
    assert (ours.mean, ours.ci_low, ours.ci_high) == pytest.approx((theirs["y"], theirs["ymin"], theirs["ymax"]))


def test_judge_agreement_and_length_correlation():
    a = [1, 3, 4, 6, np.nan, 2]
    b = [1, 4, 6, 6, 3, 2]
    r = judge_agreement(a, b)
    assert (r.n, r.exact, r.within_1) == (5, pytest.approx(3 / 5), pytest.approx(4 / 5))
    lengths = [10, 30, 40, 90, 5, 20]
    c = length_correlation(a, lengths)
    assert c.n == 5 and c.rho == pytest.approx(1.0)
    assert np.isnan(length_correlation([1, 1, 1], [1, 2, 3]).rho)
    with pytest.raises(ValueError, match="aligned"):
        judge_agreement([1, 2], [1])
