"""Combining the per-mix inputs: scores, cost ledgers, training metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polyglot_kedro.pipelines.reporting.inputs import collect_training_metrics, combine_scores, summarize_costs


def test_combine_scores_rejects_bad_frames(scores_by_mix):
    mono = scores_by_mix["mono"]
    with pytest.raises(ValueError, match=r"'mono.scores': missing columns \['valid'\]"):
        combine_scores(mono=mono.drop(columns="valid"))
    with pytest.raises(ValueError, match="other mixes"):
        combine_scores(multi2=mono)
    broken = mono.copy()
    broken.loc[5, "score"] = np.nan
    with pytest.raises(ValueError, match="row 5: valid is True but score is NaN"):
        combine_scores(mono=broken)
    with pytest.raises(ValueError, match="duplicated"):
        combine_scores(mono=pd.concat([mono, mono.iloc[:1]]))


def test_combine_scores_adds_paper_rows_and_checks_them(scores_by_mix):
    mono = scores_by_mix["mono"]
    paper = mono.iloc[:3].assign(model="paper")
    both = combine_scores(mono=mono, paper_results=paper)
    assert len(both) == len(mono) + 3 and set(both["model"]) == {"tiny_llama", "paper"}
    assert len(combine_scores(mono=mono, paper_results=paper.iloc[:0])) == len(mono)
    with pytest.raises(ValueError, match="'paper_results': missing columns"):
        combine_scores(mono=mono, paper_results=paper.drop(columns="metric"))


def test_costs_and_training_metrics(usage):
    ledger = summarize_costs(usage("translation", 0.5), mono=usage("judging", 0.25), multi2=usage("judging", 0.25))
    assert list(ledger["mix"]) == ["", "mono", "multi2", "TOTAL"]
    total = ledger[ledger["mix"] == "TOTAL"].iloc[0]
    assert total["cost_usd"] == pytest.approx(1.0) and total["requests"] == 30
    assert list(summarize_costs(mono=usage("judging", 0.25))["mix"]) == ["mono", "TOTAL"]
    tm = collect_training_metrics(mono={"loss": [2.0, 1.5, 1.2], "tokens": 1000, "config": {"lr": 2e-4}, "note": None},
                                  multi2={"loss": [], "tokens": 900})
    assert list(tm["mix"]) == ["mono", "multi2"]
    assert tm.loc[0, "loss.last"] == 1.2 and tm.loc[0, "loss.len"] == 3 and tm.loc[0, "config.lr"] == 2e-4
    assert tm.loc[1, "tokens"] == 900
