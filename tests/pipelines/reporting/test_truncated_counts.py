"""Generation prompts cut to fit the context are counted in the report (issue 15)."""

from __future__ import annotations

import pandas as pd

from polyglot_kedro.contracts import ITEM_KEYS, SCORE_COLUMNS
from polyglot_kedro.pipelines.judging.scores import fill_engines, tidy_frame
from polyglot_kedro.pipelines.reporting.statistics import count_invalid


def _key(item: str) -> dict:
    return {"model": "m", "mix": "mono", "task": "chat", "lang": "de", "prompt_setting": "native", "seed": 0,
            "item_id": item}


def test_truncated_prompts_reach_the_scores_and_the_invalid_table():
    generations = pd.DataFrame([{**_key("a"), "engine": "vllm", "prompt_truncated": True},
                                {**_key("b"), "engine": "vllm", "prompt_truncated": False}])
    rows = [{**_key(i), "metric": "io_lang_agreement", "score": 1.0, "valid": True, "invalid_reason": None}
            for i in ("a", "b")]
    rows.append({**_key("x"), "task": "xnli", "metric": "xnli_acc", "score": 0.0, "valid": True,
                 "invalid_reason": None, "engine": "lm-eval"})  # no generation row
    scores = tidy_frame(fill_engines(rows, generations), SCORE_COLUMNS)
    assert scores["prompt_truncated"].tolist() == [True, False, False]
    assert scores["engine"].tolist() == ["vllm", "vllm", "lm-eval"]
    table = count_invalid(scores).set_index("task")
    assert table.loc["chat", "n_prompt_truncated"] == 1 and table.loc["xnli", "n_prompt_truncated"] == 0


def test_scores_written_before_the_column_count_zero():
    old = pd.DataFrame([{**_key("a"), "metric": "io_lang_agreement", "score": 1.0, "valid": True,
                         "invalid_reason": None}])
    assert count_invalid(old)["n_prompt_truncated"].tolist() == [0]
    assert set(ITEM_KEYS) <= set(old.columns)
