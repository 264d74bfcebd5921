"""The plateau (non-inferiority) table and the dose-response numbers on planted cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polyglot_kedro import stats
from polyglot_kedro.pipelines.reporting.plateau import dose_response, plateau_table

MIXES = {"mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2},
         "multi3": {"kind": "multi", "n_languages": 3}, "guanaco": {"kind": "full"},
         "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"}, "base": {"kind": "untuned"}}
GROUPS = {"high": ["en", "de"], "low": ["is"]}
PARAMS = {"n_boot": 500, "seed": 3, "alpha": 0.05, "plateau": {"delta": {"default": 0.05, "helpfulness": 0.25}}}


def _scores(level_means: dict[str, float], *, lang: str, n_items: int, noise: float, seed: int,
            metric: str = "io_lang_agreement") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    item_effect = rng.normal(0, 0.05, n_items)  # shared by all mixes: pairing on the prompt removes it
    rows = []
    for mix, mean in level_means.items():
        for s in (0, 42, 723):
            for i in range(n_items):
                rows.append({"model": "m", "mix": mix, "task": "chat", "lang": lang, "prompt_setting": "native",
                             "seed": s, "item_id": f"i{i}", "metric": metric, "valid": True, "invalid_reason": "",
                             "score": mean + item_effect[i] + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_three_cases_enough_worse_undecided():
    clear = _scores({"mono": 0.2, "multi2": 0.8, "multi3": 0.8, "guanaco": 0.8}, lang="en", n_items=40, noise=0.01,
                    seed=1)
    never = _scores({"mono": 0.2, "multi2": 0.4, "multi3": 0.6, "guanaco": 0.9}, lang="de", n_items=40, noise=0.01,
                    seed=2)
    noisy = _scores({"mono": 0.5, "multi2": 0.5, "multi3": 0.5, "guanaco": 0.5}, lang="is", n_items=6, noise=1.0,
                    seed=3)
    table = plateau_table(pd.concat([clear, never, noisy]), MIXES, GROUPS, PARAMS).set_index(["scope", "target"])
    en = table.loc[("language", "en")]
    assert en["answer"] == "enough with 2" and en["enough_with"] == 2 and en["delta"] == 0.05
    assert en["decisions"] == "mono (1): worse; multi2 (2): non_inferior; multi3 (3): non_inferior"
    assert table.loc[("language", "de"), "answer"].startswith("not reached")
    assert pd.isna(table.loc[("language", "de"), "enough_with"])
    assert table.loc[("language", "is"), "answer"] == "undecided" and pd.isna(table.loc[("language", "is"), "enough_with"])
    # the groups pool their languages' prompts; 'low' is only the noisy Icelandic cell
    assert table.loc[("group", "low"), "answer"] == "undecided"
    assert table.loc[("group", "high"), "n_prompts"] == 80
    # mt mixes and the untuned base are not rungs of the ladder
    assert "mt_multi2" not in en["decisions"] and "base" not in en["decisions"]


def test_plateau_uses_the_metric_margin():
    # multi2 is 0.2 below the larger mixes on the 1-6 scale: within helpfulness' 0.25, not within 0.05
    help_ = _scores({"mono": 1.0, "multi2": 3.8, "multi3": 4.0, "guanaco": 4.0}, lang="en", n_items=40, noise=0.01,
                    seed=4, metric="helpfulness")
    table = plateau_table(help_, MIXES, GROUPS, PARAMS)
    assert table.loc[table["scope"] == "language", "answer"].iloc[0] == "enough with 2"
    strict = plateau_table(help_, MIXES, GROUPS, {**PARAMS, "plateau": {"delta": {"helpfulness": 0.05}}})
    assert strict.loc[strict["scope"] == "language", "enough_with"].iloc[0] == 3
    with pytest.raises(ValueError, match="no margin for metric 'helpfulness'"):
        plateau_table(help_, MIXES, GROUPS, {**PARAMS, "plateau": {"delta": {"xnli_acc": 0.05}}})


def test_dose_response_numbers():
    en = _scores({"mono": 0.2, "multi2": 0.8, "multi3": 0.8, "guanaco": 0.9}, lang="en", n_items=10, noise=0.05, seed=5)
    de = _scores({"mono": 0.4, "multi2": 0.6, "multi3": 0.7, "guanaco": 0.9}, lang="de", n_items=10, noise=0.05, seed=6)
    both = pd.concat([en, de])
    dose = dose_response(both, MIXES, GROUPS, PARAMS)
    high = dose[dose["group"] == "high"]
    assert list(high["mix"]) == ["mono", "multi2", "multi3", "guanaco"]
    assert list(high["n_languages"].astype("object")) == [1, 2, 3, pd.NA]
    mono = high.iloc[0]
    pooled = stats.pool_languages(both[both["mix"] == "mono"])
    ref = stats.cluster_bootstrap_ci(pooled, n_resamples=PARAMS["n_boot"], seed=PARAMS["seed"])
    assert mono["n_prompts"] == 20 and mono["mean"] == pytest.approx(ref.mean)
    assert (mono["ci_low"], mono["ci_high"]) == pytest.approx((ref.ci_low, ref.ci_high))
    assert dose[dose["group"] == "low"].empty
