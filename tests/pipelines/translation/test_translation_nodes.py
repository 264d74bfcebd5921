"""Translation nodes against the local OpenAI-compatible server (real openai SDK)."""

from __future__ import annotations

import pandas as pd
import pytest

from polyglot_kedro.pipelines.translation.nodes import (
    RoleTokenError,
    assemble_chat_prompts,
    english_prompts,
    mask_roles,
    restore_roles,
    translate_guanaco,
    translate_prompts,
)
from polyglot_kedro.prompting import read_prompt_file


def test_prompt_template_is_the_papers(translator_server, llm_endpoints, translation_params, chat_prompts_raw):
    translate_prompts(chat_prompts_raw, None, translation_params, llm_endpoints)
    user = [b["messages"][1]["content"] for b in translator_server.bodies]
    greek = next(u for u in user if "What is 2+2?" in u and "Greek" in u)
    assert greek.startswith("Translate the following text into standard modern Greek. \nKeep the structure")
    assert greek.endswith('Original: "What is 2+2?"\n\nTranslation into standard modern Greek:')
    assert translator_server.bodies[0]["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert "role labels (e.g. <S1>, <S2>)" in read_prompt_file("translation_guanaco.txt")


def test_translate_prompts_partitions_and_rerun_sends_nothing(translator_server, llm_endpoints, translation_params, chat_prompts_raw):
    parts, usage = translate_prompts(chat_prompts_raw, None, translation_params, llm_endpoints)
    assert sorted(parts) == ["de", "el"]
    de = parts["de"]
    assert list(de["id"]) == ["p1", "p2", "p3"]  # only English rows are translated
    assert de["instruction"].iloc[0] == '"[German] Name three colours."'
    assert set(de["status"]) == {"ok"} and set(de["model"]) == {"gpt-test"}
    assert usage.iloc[0]["sent"] == 6 and usage.iloc[0]["stage"] == "translation"
    translator_server.reset_counts()
    more = dict(translation_params, prompt_languages=["de", "el", "fr"])
    parts2, usage2 = translate_prompts(chat_prompts_raw, None, more, llm_endpoints)
    assert translator_server.total == 3  # only the new language was sent
    assert usage2.iloc[0][["sent", "cached"]].tolist() == [3, 6]
    pd.testing.assert_frame_equal(parts2["de"], parts["de"])


def test_failed_prompt_translation_is_a_row_and_blocks_assembly(translator_server, llm_endpoints, translation_params, chat_prompts_raw):
    translator_server.key_fn = lambda body: "all"
    translator_server.faults["all"] = ["500"] * 100
    cfg = {"translator": dict(llm_endpoints["translator"], max_retries=0)}
    parts, usage = translate_prompts(chat_prompts_raw, None, translation_params, cfg)
    assert set(parts["el"]["status"]) == {"failed"} and parts["el"]["instruction"].isna().all()
    assert usage.iloc[0]["failed"] == 6
    with pytest.raises(ValueError, match=r"'de': 3 prompt translation\(s\) failed"):
        assemble_chat_prompts(chat_prompts_raw, parts, translation_params)


def test_assemble_prefers_native_and_names_missing_language(translator_server, llm_endpoints, translation_params, chat_prompts_raw):
    parts, _ = translate_prompts(chat_prompts_raw, None, translation_params, llm_endpoints)
    lazy = {k: (lambda v=v: v) for k, v in parts.items()}  # as PartitionedDataset loads them
    out = assemble_chat_prompts(chat_prompts_raw, lazy, translation_params)
    assert list(out.columns) == ["id", "lang", "instruction", "prompt_source"]
    assert out.groupby("lang")["prompt_source"].first().to_dict() == {"de": "mt", "el": "mt", "en": "native", "fr": "native"}
    assert list(out["lang"].unique()) == ["en", "de", "el", "fr"]
    with pytest.raises(ValueError, match="'sv'"):
        assemble_chat_prompts(chat_prompts_raw, parts, dict(translation_params, eval_languages=["sv"]))


def test_english_only_source_without_lang_or_id():
    df = english_prompts(pd.DataFrame({"instruction": ["a", "b"]}))
    assert df.to_dict("list") == {"id": ["a0000", "a0001"], "instruction": ["a", "b"]}
    with pytest.raises(ValueError, match="a0001"):
        english_prompts(pd.DataFrame({"instruction": ["a", " "]}))


def test_role_token_validation():
    src = mask_roles("### Human: Hi ### Assistant: Hello.### Human: Bye ### Assistant: Ciao.")
    assert src == "<S1> Hi <S2> Hello.<S1> Bye <S2> Ciao."
    assert restore_roles(src, "<S1> Hallo <S2> Guten Tag.<S1> Tschüss <S2> Ciao.") == (
        "### Human: Hallo### Assistant: Guten Tag.### Human: Tschüss### Assistant: Ciao."
    )
    cases = {
        "<S1> Hallo <S2> Tag. Tschüss <S2> Ciao.": "missing",
        "<S1> Hallo <S2> Tag.<S1> Tschüss <S2> Ciao. <S2> x": "duplicated",
        "<S2> Hallo <S1> Tag.<S1> Tschüss <S2> Ciao.": "reordered",
        "Sure! <S1> Hallo <S2> Tag.<S1> Tschüss <S2> Ciao.": "before the first",
        "<S1> Hallo <S2> <S1> Tschüss <S2> Ciao.": "empty turn",
    }
    for text, reason in cases.items():
        with pytest.raises(RoleTokenError, match=reason):
            restore_roles(src, text)


def test_translate_guanaco_retries_once_then_rejects(translator_server, llm_endpoints, translation_params):
    src = pd.DataFrame(
        {
            "id": ["g1", "g2", "g3", "g4", "g5"],
            "text": [
                "### Human: Hello there ### Assistant: Hi!",
                "### Human: BREAK_ONCE please ### Assistant: ok",
                "### Human: BREAK_ALWAYS please ### Assistant: ok",
                "### Human: REORDER please ### Assistant: ok",
                "no markers at all",
            ],
            "lang": "en",
            "target_lang": ["de", "de", "es", "es", "de"],
        }
    )
    parts, rejected, usage = translate_guanaco(src, None, translation_params, llm_endpoints)
    assert sorted(parts) == ["de"]
    de = parts["de"]
    assert list(de["id"]) == ["g1-de", "g2-de"] and list(de["source_id"]) == ["g1", "g2"]
    assert de["text"].iloc[0] == "### Human: [German] Hello there### Assistant: Hi!"
    assert de["text"].iloc[1].startswith("### Human: [German] BREAK_ONCE") and set(de["status"]) == {"ok"}
    reasons = dict(zip(rejected["id"], rejected["reason"]))
    assert reasons["g3-es"].startswith("duplicated") and reasons["g4-es"].startswith("reordered")
    assert reasons["g5-de"].startswith("source not Guanaco format")
    assert set(rejected.columns) == {"id", "lang", "reason", "raw"}
    # one re-ask each for g2, g3, g4 (a new request: the first answer is cached, not reused)
    assert usage.iloc[0]["sent"] == 4 + 3
    translator_server.reset_counts()
    translate_guanaco(src, None, translation_params, llm_endpoints)
    assert translator_server.total == 0  # rerun: all from the cache, same decisions


def test_translate_guanaco_missing_column(llm_endpoints, translation_params):
    with pytest.raises(ValueError, match="target_lang"):
        translate_guanaco(pd.DataFrame({"id": ["a"], "text": ["x"]}), None, translation_params, llm_endpoints)
