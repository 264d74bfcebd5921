"""Task scoring (XQuAD, X-CSQA, XNLI) and the assembled score table, on tiny in-memory rows."""

from __future__ import annotations

import pandas as pd
import pytest

from polyglot_kedro.contracts import SCORE_COLUMNS
from polyglot_kedro.pipelines.judging.scores import collect_scores, tidy_frame
from polyglot_kedro.pipelines.judging.task_scoring import score_tasks

from .conftest import make_xnli


def test_score_tasks_tidy_rows(generations):
    scores = score_tasks(generations.assign(engine="transformers"), make_xnli(), "mono")
    assert list(scores.columns) == SCORE_COLUMNS
    assert scores["score"].dtype == "float64" and scores["valid"].dtype == bool
    assert scores.groupby("metric").size().to_dict() == {"xquad_em": 2, "xquad_f1": 2, "xcsqa_acc": 2, "xnli_acc": 3}
    by = scores.set_index(["metric", "item_id"])
    q1 = by.loc[("xquad_em", "q1")]  # repeated question stripped, cut at the closing quote
    assert (q1.pred, q1.score, q1.em, q1.f1) == ("308", 1.0, 1.0, 1.0)
    q2 = by.loc[("xquad_f1", "q2")]  # Chinese: character tokens, 2 of 4 gold characters
    assert q2.pred == "北京。" and q2.em == 0.0 and q2.score == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert by.loc[("xcsqa_acc", "x1")][["score", "pred", "gold"]].tolist() == [1.0, "C", "C"]
    x2 = by.loc[("xcsqa_acc", "x2")]
    assert (x2.score, x2.valid, x2.invalid_reason) == (0.0, True, "no answer letter A-E (counted as wrong)")
    assert pd.isna(x2.pred) and x2.gold == "B"
    xnli = scores[scores["metric"] == "xnli_acc"].set_index("item_id")
    assert xnli["score"].iloc[:2].tolist() == [1.0, 0.0] and not xnli.loc["n3", "valid"]
    assert xnli.loc["n3", "invalid_reason"] == "no prediction" and (xnli["mix"] == "mono").all()
    assert set(xnli["engine"]) == {"lm-eval"}
    assert set(scores.loc[scores["task"] != "xnli", "engine"]) == {"transformers"}


def test_xquad_question_comes_from_its_column_not_the_prompt(generations):
    """A prompt without the question text: the carried question still strips the model's repetition."""
    gens = generations[generations["item_id"] == "q1"].assign(prompt="### Human: (no question here)### Assistant:")
    em = score_tasks(gens, None, "mono").set_index("metric").loc["xquad_em"]
    assert (em.pred, em.score) == ("308", 1.0)
    # without the question the repetition is part of the answer: the column is what is used
    plain = score_tasks(gens.assign(question=""), None, "mono").set_index("metric").loc["xquad_em"]
    assert plain.pred == "How many points did the defence allow?" and plain.score == 0.0
    with pytest.raises(ValueError, match=r"item_id=q1\): field 'question' is not a text"):
        score_tasks(gens.assign(question=None), None, "mono")


def test_score_tasks_rejects_bad_reference(generations):
    bad = generations.copy()
    bad.loc[bad["item_id"] == "q1", "reference"] = "not json ["
    with pytest.raises(ValueError, match=r"task=xquad, lang=en, seed=0, item_id=q1\): field 'reference' is not JSON"):
        score_tasks(bad, pd.DataFrame(), "mono")
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['summary'\]"):
        score_tasks(generations.assign(task="summary"), None, "mono")


def test_missing_question_column_fails_with_name(generations):
    with pytest.raises(ValueError, match=r"generations: missing columns \['question'\]"):
        score_tasks(generations.drop(columns=["question"]), None, "mono")


def test_collect_scores_chat_rows_then_task_rows(generations):
    tasks = score_tasks(generations, make_xnli(), "mono")
    chat = tidy_frame([{**tasks.iloc[0].to_dict(), "task": "chat", "metric": "helpfulness", "mix": None}], SCORE_COLUMNS)
    scores = collect_scores(chat, tasks, "mono")
    assert list(scores.columns) == SCORE_COLUMNS and len(scores) == 1 + len(tasks)
    assert scores["metric"].iloc[0] == "helpfulness" and (scores["mix"] == "mono").all()  # missing mix filled
    pd.testing.assert_frame_equal(scores.iloc[1:].reset_index(drop=True), tasks)
    empty = collect_scores(tidy_frame([], SCORE_COLUMNS), tidy_frame([], SCORE_COLUMNS), "mono")
    assert list(empty.columns) == SCORE_COLUMNS and empty.empty


@pytest.mark.parametrize(
    "task_scoring, metrics",
    [
        (None, ["xquad_em", "xquad_f1"]),
        ({"xquad": {"metrics": ["xquad_match"]}}, ["xquad_match"]),
        ({"xquad": {"metrics": ["xquad_match", "xquad_em", "xquad_f1"]}}, ["xquad_match", "xquad_em", "xquad_f1"]),
    ],
)
def test_xquad_metrics_are_selected_by_params(generations, task_scoring, metrics):
    scores = score_tasks(generations, None, "mono", task_scoring)
    xquad = scores[scores["task"] == "xquad"]
    assert xquad.groupby("item_id")["metric"].agg(list).to_dict() == {"q1": metrics, "q2": metrics}
    assert xquad["em"].notna().all() and xquad["f1"].notna().all()  # carried whatever is emitted


@pytest.mark.parametrize("rule, q1, q2", [("exact_match", 1.0, 0.0), ("gold_contained", 1.0, 0.0)])
def test_xquad_match_rule_and_its_record(generations, rule, q1, q2):
    params = {"xquad": {"metrics": ["xquad_match"], "match": rule}}
    by = score_tasks(generations, None, "mono", params).set_index(["metric", "item_id"])
    assert by.loc[("xquad_match", "q1"), "score"] == q1 and by.loc[("xquad_match", "q2"), "score"] == q2
    assert set(by.loc["xquad_match", "judge_mode"]) == {rule}


def test_xquad_match_rules_differ_where_the_answer_holds_more_than_the_gold(generations):
    """'308 points' holds the gold '308' and is not equal to it; English EM/F1 use the official SQuAD rule."""
    gens = generations[generations["item_id"] == "q1"].assign(
        output='308 points, all told"', reference='["308", "711,988"]'
    )

    def score(rule, metric):
        params = {"xquad": {"metrics": ["xquad_match", "xquad_em", "xquad_f1"], "match": rule}}
        return score_tasks(gens, None, "mono", params).set_index("metric").loc[metric, "score"]

    assert score("exact_match", "xquad_match") == 0.0 and score("gold_contained", "xquad_match") == 1.0
    assert score("exact_match", "xquad_em") == 0.0
    assert score("exact_match", "xquad_f1") == pytest.approx(2 * (1 / 4) * 1.0 / (1 / 4 + 1.0))  # 1 of 4 answer tokens
    official = gens.assign(output='711988"')  # SQuAD deletes the comma: 711,988 == 711988
    em = score_tasks(official, None, "mono", {"xquad": {"metrics": ["xquad_em"]}}).set_index("metric")
    assert em.loc["xquad_em", "score"] == 1.0


def test_task_scoring_params_are_checked(generations):
    with pytest.raises(ValueError, match="metrics"):
        score_tasks(generations, None, "mono", {"xquad": {"metrics": ["xquad_bleu"]}})
    with pytest.raises(ValueError, match="match"):
        score_tasks(generations, None, "mono", {"xquad": {"match": "fuzzy"}})
    with pytest.raises(ValueError, match="metrics"):
        score_tasks(generations, None, "mono", {"xquad": {"metrics": []}})
