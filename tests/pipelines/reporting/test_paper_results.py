"""The paper's released per-item files (ZurichNLP/multilingual-instruction-tuning layout) as model ``paper``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.pipelines.reporting.paper_results import (
    import_paper_results,
    load_paper_results,
    parse_paper_path,
)
from polyglot_kedro.pipelines.reporting.statistics import aggregate_scores

LIKERT = ("data/llm_evals/likert/gpt-3.5-turbo-1106/llama_2_7b_hf_{tag}_merged/"
          "alpaca_eval_instructions_de-none-guanaco_prompt-s{seed}-k50-p0.9-t0.8-b8-l300-ds42-as42-source-system.jsonl")
OUTPUTS = ("data/alpaca_eval_outputs/falcon_7b_guanaco_merged/"
           "alpaca_eval_instructions_bg-none-guanaco_prompt-s0-k50-p0.9-t0.8-b8.jsonl")
# Rows as the paper released them (fields and label style of its files; texts shortened).
GENERATIONS = [
    {"prompt": "### Human: Hallo?### Assistant:", "system": "Hallo!", "finish_reason": "stop", "source": "Hallo?",
     "secs": 1.2, "source_lang": "deu_Latn", "system_lang": "deu_Latn"},
    {"prompt": "### Human: Wie?### Assistant:", "system": "How?", "finish_reason": "stop", "source": "Wie?",
     "secs": 1.1, "source_lang": "deu_Latn", "system_lang": "eng_Latn"},
    {"prompt": "### Human: x### Assistant:", "system": "", "finish_reason": "stop", "source": "x",
     "secs": 0.3, "source_lang": "", "system_lang": ""},
]


def _judged(scores, ids=(192, 718)):
    return [{"prompt": "p", "system": "s", "finish_reason": "stop", "source": "p", "secs": 1.0,
             "source_lang": "deu_Latn", "system_lang": lang, "id": i, "eval_reasoning": "...", "eval_score": score,
             "eval_meta": {"model_name": "gpt-3.5-turbo-1106", "cost": 0.001}}
            for i, score, lang in zip(ids, scores, ["deu_Latn", "nno_Latn"])]


def test_parse_paper_path():
    assert parse_paper_path(LIKERT.format(tag="ml2", seed=42)) == {
        "model": "llama_2_7b_hf", "mix": "multi2", "lang": "de", "seed": 42, "judge": "gpt-3.5-turbo-1106"}
    assert parse_paper_path(LIKERT.format(tag="ml1", seed=0))["mix"] == "mono"  # the paper repo's Mono
    gen = parse_paper_path(OUTPUTS)
    assert (gen["model"], gen["mix"], gen["judge"], gen["lang"], gen["seed"]) == ("falcon_7b", "guanaco", None, "bg", 0)
    assert parse_paper_path(LIKERT.format(tag="de", seed=0), {"de": "mono_de"})["mix"] == "mono_de"
    with pytest.raises(ValueError, match="not a paper results path"):
        parse_paper_path("results/foo.jsonl")


def test_import_generation_and_judge_rows():
    rows = import_paper_results(GENERATIONS, model="falcon_7b", mix="guanaco", lang="de", seed=0)
    assert list(rows["metric"]) == ["io_lang_agreement"] * 3 and set(rows["model"]) == {"paper"}
    assert list(rows["score"].iloc[:2]) == [1.0, 0.0] and np.isnan(rows["score"].iloc[2])
    assert list(rows["valid"]) == [True, True, False] and rows["invalid_reason"].iloc[2] == "prompt has no language label"
    assert list(rows["response_lang"].iloc[:2]) == ["de", "en"] and list(rows["item_id"]) == ["0", "1", "2"]
    assert set(rows["engine"]) == {"paper:falcon_7b"}

    judged = _judged([2, "n/a"])
    rows = import_paper_results(judged, model="llama_2_7b_hf", mix="multi2", lang="de", seed=42)
    help_ = rows[rows["metric"] == "helpfulness"]
    assert list(help_["item_id"]) == ["192", "718"] and help_["score"].iloc[0] == 2.0
    assert help_["judge"].iloc[0] == "gpt-3.5-turbo-1106"
    assert not help_["valid"].iloc[1] and "not an integer in 1..6" in help_["invalid_reason"].iloc[1]
    # nno_Latn and deu_Latn: no match; both judged rows also carry the language check
    assert list(rows.loc[rows["metric"] == "io_lang_agreement", "score"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="f.jsonl line 1"):
        import_paper_results([{"prompt": "p"}], model="m", mix="x", lang="de", seed=0, source="f.jsonl")


def test_load_paper_results_node(tmp_path, reporting_params):
    assert load_paper_results(reporting_params).empty  # default: nothing imported
    on_disk = tmp_path / LIKERT.format(tag="ml2", seed=42)
    on_disk.parent.mkdir(parents=True)
    on_disk.write_text("".join(json.dumps(r) + "\n" for r in _judged([5, 3])), encoding="utf-8")
    params = {**reporting_params, "paper_results": [
        str(on_disk),
        {"path": LIKERT.format(tag="ml1", seed=42), "records": _judged([1, 2])},
    ]}
    rows = load_paper_results(params)
    help_ = rows[rows["metric"] == "helpfulness"]
    assert sorted(zip(help_["mix"], help_["score"])) == [("mono", 1.0), ("mono", 2.0), ("multi2", 3.0), ("multi2", 5.0)]
    # the paper's rows go through the same contract check and statistics as ours
    agg = aggregate_scores(combine_scores(paper_results=rows), reporting_params)
    mean = agg[(agg["mix"] == "multi2") & (agg["metric"] == "helpfulness")]["mean"].iloc[0]
    assert mean == pytest.approx(4.0) and set(agg["model"]) == {"paper"}


def test_load_paper_results_errors(tmp_path, reporting_params):
    bad = tmp_path / LIKERT.format(tag="ml2", seed=42)
    bad.parent.mkdir(parents=True)
    bad.write_text('{"id": 1, "eval_score": 3}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not JSON"):
        load_paper_results({**reporting_params, "paper_results": [str(bad)]})
    with pytest.raises(ValueError, match=r"paper_results\[0\]: needs a 'path'"):
        load_paper_results({**reporting_params, "paper_results": [{"records": []}]})
    two_models = [{"path": LIKERT.format(tag="ml2", seed=42), "records": _judged([1, 2])},
                  {"path": OUTPUTS, "records": GENERATIONS}]
    with pytest.raises(ValueError, match="give each model's entries their own 'label'"):
        load_paper_results({**reporting_params, "paper_results": two_models})
    two_models[1]["label"] = "paper_falcon"
    assert set(load_paper_results({**reporting_params, "paper_results": two_models})["model"]) == {"paper", "paper_falcon"}
