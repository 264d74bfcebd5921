"""Aggregates, paired comparisons and invalid counts on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from polyglot_kedro.pipelines.reporting.statistics import compare_mixes, count_invalid, pooled_summary


def test_aggregate_matches_numpy_and_scipy(scores, aggregates, reporting_params):
    assert len(aggregates) == 3 * 4 * (2 + 2 + 1)  # mixes x langs x (chat metrics + xquad settings + xcsqa)
    key = (aggregates["mix"] == "multi2") & (aggregates["lang"] == "es") & (aggregates["metric"] == "helpfulness")
    row = aggregates[key].iloc[0]
    raw = scores[(scores["mix"] == "multi2") & (scores["lang"] == "es") & (scores["metric"] == "helpfulness")]
    values = raw["score"].to_numpy(float)
    assert row["n"] == 18 and row["n_invalid"] == 0
    assert row["mean"] == pytest.approx(values.mean())
    assert row["sd"] == pytest.approx(values.std(ddof=1))
    ref = sps.bootstrap((values,), np.mean, n_resamples=reporting_params["n_boot"], method="percentile",
                        random_state=np.random.default_rng(reporting_params["seed"])).confidence_interval
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref.low, ref.high))
    de = aggregates[(aggregates["mix"] == "mono") & (aggregates["lang"] == "de") & (aggregates["metric"] == "helpfulness")].iloc[0]
    assert de["n"] == 17 and de["n_invalid"] == 1


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
    assert (de["n_rows"], de["n_invalid"]) == (18, 1)
    assert de["reasons"] == "unparsable judgment: 1"
    assert inv.loc[inv["metric"] == "xquad_f1", "n_invalid"].sum() == 0


def test_compare_mixes_finds_planted_difference_only(scores, mixes, reporting_params):
    sig = compare_mixes(scores, mixes, reporting_params)
    assert set(zip(sig["mix_a"], sig["mix_b"])) == {("mono", "multi2"), ("multi2", "multi3")}
    help_ = sig[(sig["metric"] == "helpfulness") & (sig["mix_a"] == "mono")].set_index("lang")
    assert help_.loc["es", "diff"] > 1.0 and help_.loc["es", "p_value"] < 0.01 and help_.loc["es", "significant"]
    for lang in ("en", "ru"):
        assert not help_.loc[lang, "significant"]
    assert help_.loc["de", "n_pairs"] == 17 and help_.loc["de", "n_unpaired"] == 0  # same item invalid on both sides
    later = sig[(sig["metric"] == "helpfulness") & (sig["mix_a"] == "multi2")].set_index("lang")
    assert not later.loc["es", "significant"]  # both multi mixes carry the same bonus


def test_compare_mixes_pairs_only_valid_rows(scores, mixes, reporting_params):
    one = (scores["mix"] == "multi2") & (scores["lang"] == "en") & (scores["metric"] == "helpfulness") \
        & (scores["item_id"] == "i3") & (scores["seed"] == 42)
    scores.loc[one, ["score", "valid", "invalid_reason"]] = [np.nan, False, "refusal"]
    sig = compare_mixes(scores, mixes, {**reporting_params, "comparisons": [["mono", "multi2"]]})
    en = sig[(sig["metric"] == "helpfulness") & (sig["lang"] == "en")].iloc[0]
    assert (en["n_pairs"], en["n_unpaired"]) == (17, 1)
    ok = scores[(scores["lang"] == "en") & (scores["metric"] == "helpfulness") & ~one]
    a = ok[ok["mix"] == "mono"].set_index(["seed", "item_id"])["score"]
    b = ok[ok["mix"] == "multi2"].set_index(["seed", "item_id"])["score"]
    assert en["diff"] == pytest.approx((b - a.loc[b.index]).mean())


def test_compare_mixes_rejects_unknown_mix(scores, mixes, reporting_params):
    with pytest.raises(ValueError, match="unknown mixes \\['multi9'\\]"):
        compare_mixes(scores, mixes, {**reporting_params, "comparisons": [["mono", "multi9"]]})
