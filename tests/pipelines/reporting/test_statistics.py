"""Aggregates, paired comparisons and invalid counts on hand-made scores: the prompt is the unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from polyglot_kedro import stats
from polyglot_kedro.pipelines.reporting.statistics import (
    aggregate_scores,
    compare_mixes,
    count_invalid,
    pooled_summary,
)

from .conftest import N_ITEMS, SEEDS


def _cell(scores, mix, lang, metric):
    return scores[(scores["mix"] == mix) & (scores["lang"] == lang) & (scores["metric"] == metric)]


def test_aggregate_resamples_prompts(scores, aggregates, reporting_params):
    assert len(aggregates) == 3 * 4 * (2 + 2 + 1)  # mixes x langs x (chat metrics + xquad settings + xcsqa)
    key = (aggregates["mix"] == "multi2") & (aggregates["lang"] == "es") & (aggregates["metric"] == "helpfulness")
    row = aggregates[key].iloc[0]
    raw = _cell(scores, "multi2", "es", "helpfulness")
    values = raw["score"].to_numpy(float)
    assert (row["n"], row["n_prompts"], row["n_seeds"], row["n_invalid"]) == (N_ITEMS * len(SEEDS), N_ITEMS, 3, 0)
    assert row["mean"] == pytest.approx(values.mean())
    assert row["sd"] == pytest.approx(values.std(ddof=1))
    # default ci_unit prompt_cluster: equal seeds per prompt, so it is the bootstrap of prompt means
    ref = stats.cluster_bootstrap_ci(raw, n_resamples=reporting_params["n_boot"], seed=reporting_params["seed"])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.ci_low, ref.ci_high))
    prompt_means = raw.groupby("item_id")["score"].mean().to_numpy()
    sci = sps.bootstrap((prompt_means,), np.mean, n_resamples=reporting_params["n_boot"], method="percentile",
                        rng=np.random.default_rng(reporting_params["seed"])).confidence_interval
    seed_mean = aggregate_scores(scores, {**reporting_params, "ci_unit": "seed_mean"})[key].iloc[0]
    assert (seed_mean["ci_low"], seed_mean["ci_high"]) == pytest.approx((sci.low, sci.high))
    # the paper's bar: seaborn's bootstrap over the three per-seed means
    paper = stats.paper_seed_mean_ci(raw.groupby("seed")["score"].mean().to_numpy(), n_boot=reporting_params["n_boot"],
                                     seed=reporting_params["seed"])
    assert (row["seed_ci_low"], row["seed_ci_high"]) == pytest.approx((paper.ci_low, paper.ci_high))
    # the old row bootstrap is still there (ci_unit: row) and is narrower here than the prompt-level one
    rows = aggregate_scores(scores, {**reporting_params, "ci_unit": "row"})[key].iloc[0]
    old = sps.bootstrap((values,), np.mean, n_resamples=reporting_params["n_boot"], method="percentile",
                        rng=np.random.default_rng(reporting_params["seed"])).confidence_interval
    assert (rows["ci_low"], rows["ci_high"]) == pytest.approx((old.low, old.high))
    de = aggregates[(aggregates["mix"] == "mono") & (aggregates["lang"] == "de") & (aggregates["metric"] == "helpfulness")].iloc[0]
    assert de["n"] == N_ITEMS * len(SEEDS) - 1 and de["n_invalid"] == 1 and de["n_prompts"] == N_ITEMS


def test_pooled_summary_pools_languages(scores, reporting_params):
    pooled = pooled_summary(scores, "helpfulness", reporting_params)
    mono = pooled[pooled["mix"] == "mono"].iloc[0]
    valid = scores[(scores["mix"] == "mono") & (scores["metric"] == "helpfulness") & scores["valid"]]
    assert (mono["lang"], mono["n"], mono["n_invalid"]) == ("all", len(valid), 1)
    assert mono["mean"] == pytest.approx(valid["score"].mean())
    assert pooled_summary(scores, "xnli_acc", reporting_params).empty


def test_count_invalid_names_reasons(scores):
    inv = count_invalid(scores)
    de = inv[(inv["mix"] == "mono") & (inv["lang"] == "de") & (inv["metric"] == "helpfulness")].iloc[0]
    assert (de["n_rows"], de["n_invalid"]) == (N_ITEMS * len(SEEDS), 1)
    assert de["reasons"] == "unparsable judgment: 1"
    assert inv.loc[inv["metric"] == "xquad_f1", "n_invalid"].sum() == 0


def test_compare_mixes_finds_planted_difference_only(scores, mixes, reporting_params):
    sig = compare_mixes(scores, mixes, reporting_params)
    assert set(zip(sig["mix_a"], sig["mix_b"])) == {("mono", "multi2"), ("multi2", "multi3")}
    help_ = sig[(sig["metric"] == "helpfulness") & (sig["mix_a"] == "mono")].set_index("lang")
    es = help_.loc["es"]
    assert es["diff"] > 1.0 and es["test"] == "exact" and es["p_floor"] == pytest.approx(2 / 2**N_ITEMS)
    assert es["p_value"] < 0.01 and es["significant"]
    for lang in ("en", "ru"):
        assert not help_.loc[lang, "significant"]
    # prompt i0 lost one seed in de on both sides: still paired on its two other seeds
    assert help_.loc["de", "n_prompts"] == N_ITEMS and help_.loc["de", "n_unpaired"] == 0
    later = sig[(sig["metric"] == "helpfulness") & (sig["mix_a"] == "multi2")].set_index("lang")
    assert not later.loc["es", "significant"]  # both multi mixes carry the same bonus
    assert (sig["mde"] > 0).all()


def test_compare_mixes_one_family_per_task_and_metric(scores, mixes, reporting_params):
    sig = compare_mixes(scores, mixes, reporting_params)
    fam = sig[(sig["task"] == "chat") & (sig["metric"] == "helpfulness")]
    assert set(fam["family"]) == {"chat/helpfulness (tiny_llama)"}
    assert set(fam["family_size"]) == {2 * 4}  # two mix pairs x four languages
    assert list(fam["p_adjusted"]) == pytest.approx(list(stats.adjust_pvalues(fam["p_value"].to_numpy(), "holm")))
    xquad = sig[sig["task"] == "xquad"]
    assert set(xquad["family_size"]) == {2 * 4 * 2}  # ... x two prompt settings
    bh = compare_mixes(scores, mixes, {**reporting_params, "correction": "bh"})
    fam_bh = bh[(bh["task"] == "chat") & (bh["metric"] == "helpfulness")]
    assert list(fam_bh["p_adjusted"]) == pytest.approx(list(sps.false_discovery_control(fam_bh["p_value"].to_numpy())))
    assert set(bh["correction"]) == {"bh"}


def test_compare_mixes_pairs_prompts(scores, mixes, reporting_params):
    gone = (scores["mix"] == "multi2") & (scores["lang"] == "en") & (scores["metric"] == "helpfulness") \
        & (scores["item_id"] == "i3")
    scores.loc[gone, ["score", "valid", "invalid_reason"]] = [np.nan, False, "refusal"]  # all three seeds
    sig = compare_mixes(scores, mixes, {**reporting_params, "comparisons": [["mono", "multi2"]]})
    en = sig[(sig["metric"] == "helpfulness") & (sig["lang"] == "en")].iloc[0]
    assert (en["n_prompts"], en["n_unpaired"]) == (N_ITEMS - 1, 1)
    ok = scores[(scores["lang"] == "en") & (scores["metric"] == "helpfulness") & scores["valid"]]
    a = ok[ok["mix"] == "mono"].groupby("item_id")["score"].mean()
    b = ok[ok["mix"] == "multi2"].groupby("item_id")["score"].mean()
    assert en["diff"] == pytest.approx((b - a.loc[b.index]).mean())


def test_compare_mixes_monte_carlo_beyond_exact_limit(scores, mixes, reporting_params):
    sig = compare_mixes(scores, mixes, {**reporting_params, "exact_max_n": 5, "test_resamples": 999})
    assert set(sig["test"]) == {"monte_carlo"} and sig["p_floor"].to_numpy() == pytest.approx(1 / 1000)


def test_compare_mixes_rejects_unknown_mix(scores, mixes, reporting_params):
    with pytest.raises(ValueError, match="unknown mixes \\['multi9'\\]"):
        compare_mixes(scores, mixes, {**reporting_params, "comparisons": [["mono", "multi9"]]})
    assert compare_mixes(scores.iloc[:0], mixes, reporting_params).empty
    assert isinstance(compare_mixes(scores.iloc[:0], mixes, reporting_params), pd.DataFrame)
