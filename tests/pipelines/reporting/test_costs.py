"""The cost table holds every ledger the run wrote, and its total is their sum (issue 15)."""

from __future__ import annotations

import pandas as pd

from polyglot_kedro.config import mix_specs
from polyglot_kedro.contracts import USAGE_NUMERIC
from polyglot_kedro.pipelines.reporting import create_pipeline
from polyglot_kedro.pipelines.reporting.inputs import summarize_costs


def _ledger(stage: str, cost: float, requests: int) -> pd.DataFrame:
    row = {"stage": stage, "model": "gpt-3.5-turbo", "backend": "openai", **{c: 0 for c in USAGE_NUMERIC}}
    row.update(requests=requests, sent=requests, prompt_tokens=10 * requests, cost_usd=cost)
    return pd.DataFrame([row])


def test_every_ledger_reaches_the_cost_table_and_the_total_is_their_sum():
    ledgers = {"translation_usage": _ledger("translate_prompts", 0.5, 4),
               "guanaco_translation_usage": _ledger("translate_guanaco", 1.25, 7),
               "mono": _ledger("judge", 0.125, 3), "mt_multi2": _ledger("judge", 2.0, 5)}
    table = summarize_costs(**ledgers)
    body, total = table[table["mix"] != "TOTAL"], table[table["mix"] == "TOTAL"].iloc[0]
    assert sorted(body["stage"]) == ["judge", "judge", "translate_guanaco", "translate_prompts"]
    for column in USAGE_NUMERIC:
        assert total[column] == sum(df[column].sum() for df in ledgers.values()), column


def test_the_pipeline_reads_the_training_translation_ledger_when_a_mix_is_machine_translated():
    native = mix_specs({"mono": {"kind": "mono"}, "multi2": {"kind": "multi", "n_languages": 2}})
    with_mt = mix_specs({"mono": {"kind": "mono"}, "mt_multi2": {"kind": "multi", "n_languages": 2, "source": "mt"}})
    assert "guanaco_translation_usage" not in create_pipeline(native).inputs()
    assert "guanaco_translation_usage" in create_pipeline(with_mt).inputs()
    assert "guanaco_translation_usage" not in create_pipeline(with_mt, with_translation_usage=False).inputs()
