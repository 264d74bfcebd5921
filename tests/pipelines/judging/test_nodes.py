"""Chat judging nodes against a real local OpenAI-compatible server (scripted judge replies)."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from .conftest import CHAT, make_generations, submission as submission_of

from polyglot_kedro.contracts import CHAT_LANGUAGE_COLUMNS, JUDGMENT_COLUMNS, SCORE_COLUMNS
from polyglot_kedro.language_confusion import LanguageConfusionParams, LanguageConfusionScorer, metric_rows
from polyglot_kedro.pipelines.judging.nodes import detect_chat_languages, judge_chat, sample_items, score_chat

JUDGE = "openai:judge-model"
ROW_FIELDS = ["item_id", "lang", "score", "valid", "invalid_reason", "raw_score", "prompt_lang",
              "response_lang", "lang_match", "judge", "judge_raw"]


def _rows(df: pd.DataFrame) -> dict[str, dict]:
    out = {}
    for r in df[ROW_FIELDS].to_dict("records"):
        r = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        out[r["item_id"]] = r
    return out


def _expected(item_id, lang, score, valid, reason, raw, plang, rlang, match):
    reply = next(c[4] for c in CHAT if c[0] == item_id)
    return dict(item_id=item_id, lang=lang, score=score, valid=valid, invalid_reason=reason, raw_score=raw,
                prompt_lang=plang, response_lang=rlang, lang_match=match, judge=JUDGE, judge_raw=reply)


def test_instruction_is_the_carried_question_not_the_prompt(generations, judging_params):
    gens = generations.copy()
    gens.loc[gens["item_id"] == "c1", "prompt"] = "### Human: hi### Assistant: yo### Human: something else### Assistant:"
    langs = detect_chat_languages(gens, judging_params).set_index("item_id")
    assert langs.loc["c1", "instruction"] == CHAT[0][2]
    gens.loc[gens["item_id"] == "c1", "question"] = None
    with pytest.raises(ValueError, match=r"task=chat, lang=en, seed=0, item_id=c1\): field 'question'"):
        detect_chat_languages(gens, judging_params)


def test_sample_items_fixed_and_sorted():
    ids = pd.Series(["a3", "a1", "a2", "a1", "a4"])
    first = sample_items(ids, 2, 42)
    assert first == sample_items(ids.iloc[::-1], 2, 42)  # order of rows does not matter
    assert len(first) == 2 and set(first) <= {"a1", "a2", "a3", "a4"}
    assert sample_items(ids, None, 42) == ["a1", "a2", "a3", "a4"]
    assert sample_items(ids, 10, 42) == ["a1", "a2", "a3", "a4"]


def test_judge_chat_scripted_replies_exact_rows(generations, judging_params, llm_endpoints, judge_server):
    langs = detect_chat_languages(generations, judging_params)
    judgments, usage = judge_chat(generations, langs, None, judging_params, llm_endpoints, mix_name="mono")
    got = _rows(judgments)
    assert got == {
        "c1": _expected("c1", "en", 4.0, True, None, 4.0, "en", "en", True),
        "c2": _expected("c2", "en", 5.0, True, None, 5.0, "en", "en", True),  # JSON wrapped in prose
        "c3": _expected("c3", "en", 2.0, True, None, 2.0, "en", "en", True),  # truncated JSON, fallback
        "c4": _expected("c4", "en", None, False, "score 7 outside 1-6", None, "en", "en", True),
        "c5": _expected("c5", "en", 5.0, True, None, 5.0, "en", "en", True),  # "5" as a string
        "c6": _expected("c6", "en", None, False, "no JSON object and no score found", None, "en", "en", True),
        "d1": _expected("d1", "de", 1.0, True, None, 5.0, "de", "en", False),  # mismatch forces 1
        "d2": _expected("d2", "de", 1.0, True, None, 1.0, "de", "de", True),
    }
    assert judgments.loc[judgments["item_id"] == "c3", "judge_parse"].item() == "fallback"
    assert judge_server.total == len(CHAT)
    body = judge_server.bodies[0]
    assert body["temperature"] == 0.0 and body["seed"] == 42 and body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content": "You are an expert language evaluator."}
    u = usage.iloc[0]
    assert (u.stage, u.requests, u.sent, u.failed, u.mix) == ("judging", len(CHAT), len(CHAT), 0, "mono")

    # a rerun is answered from the cache: the server sees nothing new
    again, usage2 = judge_chat(generations, langs, None, judging_params, llm_endpoints, mix_name="mono")
    assert judge_server.total == len(CHAT)
    assert again["cached"].all() and usage2.iloc[0].sent == 0
    pd.testing.assert_frame_equal(again.drop(columns=["cached", "attempts"]), judgments.drop(columns=["cached", "attempts"]))


def test_failed_request_is_invalid_not_dropped(generations, judging_params, llm_endpoints, judge_server):
    judge_server.faults[CHAT[0][3]] = ["500"]
    langs = detect_chat_languages(generations, judging_params)
    judgments, usage = judge_chat(generations, langs, None, judging_params, llm_endpoints, mix_name="mono")
    row = judgments.set_index("item_id").loc["c1"]
    assert not row.valid and math.isnan(row.score) and math.isnan(row.raw_score)
    assert row.invalid_reason.startswith("request failed: ")
    assert len(judgments) == len(CHAT) and usage.iloc[0].failed == 1


def test_sampling_same_items_for_every_seed_and_mix(judging_params, llm_endpoints, judge_server):
    params = {"chat": {**judging_params["chat"], "n_items": 3}}
    chosen = []
    for mix in ("mono", "multi2"):
        gens = make_generations(mix, seeds=(0, 1))
        j, _ = judge_chat(gens, detect_chat_languages(gens, params), None, params, llm_endpoints, mix_name=mix)
        per_seed = {s: sorted(g["item_id"]) for s, g in j[j["lang"] == "en"].groupby("seed")}
        assert per_seed[0] == per_seed[1] and len(per_seed[0]) == 3
        assert sorted(j.loc[j["lang"] == "de", "item_id"].unique()) == ["d1", "d2"]  # fewer than n_items: all
        chosen.append(per_seed[0])
    assert chosen[0] == chosen[1]


def test_unjudged_mismatch_scores_one_without_a_request(generations, judging_params, llm_endpoints, judge_server):
    """judge_mismatched: false -- the language rule decides, nothing is sent for d1 (answered in English)."""
    params = {"chat": {**judging_params["chat"], "judge_mismatched": False}}
    langs = detect_chat_languages(generations, params)
    judgments, usage = judge_chat(generations, langs, None, params, llm_endpoints, mix_name="mono")
    d1 = judgments.set_index("item_id").loc["d1"]
    assert (d1.score, d1.valid, d1.lang_match) == (1.0, True, False)
    assert math.isnan(d1.raw_score) and pd.isna(d1.judge_raw) and d1.judge_parse == "not judged: language mismatch"
    judged = {submission_of(b) for b in judge_server.bodies}
    assert CHAT[6][3] not in judged and len(judged) == len(CHAT) - 1
    assert usage.iloc[0].requests == len(CHAT) - 1
    # the other rows are exactly what the judge-everything default gives
    full, _ = judge_chat(generations, langs, None, judging_params, llm_endpoints, mix_name="mono")
    keep = ["item_id", "score", "valid", "raw_score"]
    pd.testing.assert_frame_equal(judgments[judgments.item_id != "d1"][keep].reset_index(drop=True),
                                  full[full.item_id != "d1"][keep].reset_index(drop=True))


def test_judged_seeds_subset_and_unknown_seed(judging_params, llm_endpoints, judge_server):
    gens = make_generations("mono", seeds=(0, 1, 2))
    params = {"chat": {**judging_params["chat"], "seeds": [1]}}
    langs = detect_chat_languages(gens, params)
    judgments, _ = judge_chat(gens, langs, None, params, llm_endpoints, mix_name="mono")
    assert set(judgments["seed"]) == {1} and len(judgments) == len(CHAT)
    bad = {"chat": {**judging_params["chat"], "seeds": [1, 5]}}
    with pytest.raises(ValueError, match=r"judging.chat.seeds: .*\[5\].*seeds there: \[0, 1, 2\]"):
        judge_chat(gens, langs, None, bad, llm_endpoints, mix_name="mono")


def test_json_schema_is_sent_as_structured_output(generations, judging_params, llm_endpoints, judge_server):
    schema = {"type": "object", "properties": {"reasoning": {"type": "string"}, "score": {"type": "integer"}},
              "required": ["reasoning", "score"]}
    params = {"chat": {**judging_params["chat"], "request": {"json_schema": schema}}}
    langs = detect_chat_languages(generations, params)
    judge_chat(generations, langs, None, params, llm_endpoints, mix_name="mono")
    assert judge_server.bodies[0]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    # the schema is part of the cache key: without it, the requests are sent again
    before = judge_server.total
    judge_chat(generations, langs, None, judging_params, llm_endpoints, mix_name="mono")
    assert judge_server.total == before + len(CHAT)


def test_translated_mode_judges_english_text(generations, judging_params, llm_endpoints, judge_server):
    params = {"chat": {**judging_params["chat"], "mode": "translated"}}
    langs = detect_chat_languages(generations, params)
    judgments, usage = judge_chat(generations, langs, None, params, llm_endpoints, mix_name="mono")
    d2 = judgments.set_index("item_id").loc["d2"]
    assert d2.judged_response.startswith("EN: Der Himmel") and d2.judged_instruction.startswith("EN: Wie kocht")
    assert d2.response_lang == "de" and d2.lang_match  # the check uses the original text
    assert (d2.raw_score, d2.score) == (1.0, 1.0)
    assert judgments.set_index("item_id").loc["c1"].judged_response == CHAT[0][3]  # English is not translated
    assert d2.judge == "openai:judge-model (translated by openai:mt-model)"
    assert set(usage["stage"]) == {"judging", "judging_translation"}
    judged = [b for b in judge_server.bodies if b["messages"][0]["role"] == "system"]
    assert any("[Submission]: EN: Der Himmel" in b["messages"][1]["content"] for b in judged)


def test_score_chat_tidy_rows(generations, judging_params, llm_endpoints, judge_server):
    langs = detect_chat_languages(generations, judging_params)
    judgments, _ = judge_chat(generations, langs, None, judging_params, llm_endpoints, mix_name="mono")
    scores = score_chat(generations.assign(engine="transformers"), langs, judgments)
    assert list(scores.columns) == SCORE_COLUMNS
    assert scores["score"].dtype == "float64" and scores["valid"].dtype == bool
    assert not scores.loc[scores["valid"], "score"].isna().any()  # NaN only where invalid
    # every response has a line of 5+ tokens; en/de have no word-level check
    assert scores.groupby("metric").size().to_dict() == {
        "helpfulness": 8, "io_lang_agreement": 8, "lcb_line_pass": 8, "tgt_lang": 8}
    io = scores[scores["metric"] == "io_lang_agreement"].set_index("item_id")["score"].to_dict()
    assert io == {"c1": 1.0, "c2": 1.0, "c3": 1.0, "c4": 1.0, "c5": 1.0, "c6": 1.0, "d1": 0.0, "d2": 1.0}
    invalid = scores[(scores["metric"] == "helpfulness") & ~scores["valid"]].groupby(["mix", "lang"]).size()
    assert invalid.to_dict() == {("mono", "en"): 2}
    assert set(scores.loc[scores["metric"] == "helpfulness", "judge"]) == {JUDGE}
    assert set(scores["engine"]) == {"transformers"}


def _zh_generations() -> pd.DataFrame:
    """The fixture's generations plus three Chinese chat items (word-level language confusion)."""
    gens = make_generations()
    zh = gens[gens["item_id"] == "d2"].copy()
    rows = []
    for item_id, response in [
        ("z1", "我们可以使用 machine learning 的方法来解决这个问题，这是一个很好的办法。"),  # English term
        ("z2", "天空是蓝色的，因为空气中的分子更容易散射蓝色的光。\nThe sky is blue because air scatters blue light."),
        ("z3", "好的。"),  # no line of 5+ tokens: skipped
    ]:
        rows.append(zh.assign(lang="zh", item_id=item_id, output=response, question="为什么天空是蓝色的？请简单解释一下。"))
    return pd.concat([gens, *rows], ignore_index=True)


def test_language_confusion_rows_in_chat_scores(judging_params):
    """tgt_lang and the LCB rows, one per item/seed, beside unchanged IO agreement and helpfulness."""
    gens = _zh_generations()
    langs = detect_chat_languages(gens, judging_params)
    assert list(langs.columns) == CHAT_LANGUAGE_COLUMNS
    no_judgments = pd.DataFrame(columns=JUDGMENT_COLUMNS)
    scores = score_chat(gens, langs, no_judgments)
    assert list(scores.columns) == SCORE_COLUMNS
    key = scores.set_index(["metric", "item_id"])
    assert not key.index.duplicated().any()
    tgt = key.loc["tgt_lang", "score"].to_dict()
    assert tgt["d1"] == 0.0 and tgt["d2"] == 1.0 and tgt["z1"] == 1.0  # d1: English answer to German
    line = key.loc["lcb_line_pass"]
    assert line.loc["d1", "score"] == 0.0 and line.loc["z1", "score"] == 1.0 and line.loc["z2", "score"] == 0.0
    assert not line.loc["z3", "valid"] and line.loc["z3", "invalid_reason"].startswith("skipped: no line of >= 5")
    word = key.loc["lcb_word_pass"]
    assert set(word.index) == {"z1", "z2", "z3"}  # zh only: no word level for en/de
    assert (word.loc["z1", "score"], word.loc["z1", "valid"]) == (0.0, True)  # "machine learning"
    assert not word.loc["z2", "valid"] and word.loc["z2", "invalid_reason"].startswith("line-level error")
    assert langs.set_index("item_id").loc["z1", "lcb_english_words"] == "machine learning"
    # the same numbers as the module computes directly
    lid = LanguageConfusionScorer.from_params(LanguageConfusionParams())
    for r in gens[gens["task"] == "chat"].to_dict("records"):
        expected = {m["metric"]: m for m in metric_rows(lid.check(r["output"], r["lang"]))}
        for metric, m in expected.items():
            got = key.loc[(metric, r["item_id"])]
            assert got["valid"] == m["valid"] and (got["score"] == m["score"] or not m["valid"])
    # parquet round trip of chat_languages keeps the columns' meaning (empty string = no kept line)
    back = pd.read_parquet(io.BytesIO(langs.to_parquet()))
    pd.testing.assert_frame_equal(score_chat(gens, back, no_judgments), scores)


def test_language_confusion_disabled_adds_no_rows(judging_params):
    """Off: the chat scores are exactly the IO agreement rows as before."""
    gens = _zh_generations()
    off = {**judging_params, "language_confusion": {"enabled": False}}
    langs = detect_chat_languages(gens, off)
    assert langs[["tgt_lang_match", "lcb_line_langs", "lcb_english_words"]].isna().all().all()
    scores = score_chat(gens, langs, pd.DataFrame(columns=JUDGMENT_COLUMNS))
    assert set(scores["metric"]) == {"io_lang_agreement"}
    on = score_chat(gens, detect_chat_languages(gens, judging_params), pd.DataFrame(columns=JUDGMENT_COLUMNS))
    io_on = on[on["metric"] == "io_lang_agreement"].reset_index(drop=True)
    pd.testing.assert_frame_equal(io_on, scores.reset_index(drop=True))


def test_missing_column_fails_with_name(generations, judging_params):
    with pytest.raises(ValueError, match=r"generations: missing columns \['output'\]"):
        detect_chat_languages(generations.drop(columns=["output"]), judging_params)


def test_params_typo_fails_fast(generations):
    with pytest.raises(ValueError, match="n_itmes"):
        detect_chat_languages(generations, {"chat": {"n_itmes": 3}})


def test_hub_lid_model_for_io_agreement_is_fetched_at_its_revision(generations, judging_params, monkeypatch):
    """conf/paper's judging LID (OpenLID by Hub id): the pinned revision is fetched, its labels compared."""
    import polyglot_kedro.lid as lid_module

    calls = []

    def download(**kwargs):
        calls.append(kwargs)
        return lid_module.default_model_path()  # the bundled lid.176 stands in offline

    monkeypatch.setattr(lid_module, "hf_hub_download", download)
    sha = "0123456789abcdef0123456789abcdef01234567"
    by_hub = detect_chat_languages(generations, {**judging_params, "lid_model_path": "laurievb/OpenLID",
                                                 "lid_revision": sha})
    assert [(c["repo_id"], c["revision"], c["filename"]) for c in calls] == [("laurievb/OpenLID", sha, "model.bin")]
    pd.testing.assert_frame_equal(by_hub, detect_chat_languages(generations, judging_params))
    with pytest.raises(ValueError, match="pin 'revision'"):
        detect_chat_languages(generations, {**judging_params, "lid_model_path": "laurievb/OpenLID"})
    with pytest.raises(ValueError, match="lid_label_mode"):
        detect_chat_languages(generations, {**judging_params, "lid_label_mode": "iso3"})
