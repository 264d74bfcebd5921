"""Malformed inputs at every stage boundary: a clear error naming file/row/field,
or the rejected-rows dataset, as each stage documents; nothing valid is lost.

"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
from polyglot_kedro.pipelines.data_mixing.mixes import build_mixes
from polyglot_kedro.pipelines.data_mixing.nodes import (
    identify_languages,
    parse_guanaco_rows,
)
from polyglot_kedro.pipelines.data_mixing.params import ShortSupplyError
from polyglot_kedro.pipelines.finetuning.nodes import training_rows
from polyglot_kedro.pipelines.judging import nodes as judging
from polyglot_kedro.pipelines.judging.task_scoring import score_tasks
from polyglot_kedro.pipelines.reporting.inputs import combine_scores
from polyglot_kedro.pipelines.translation import nodes as translation
from polyglot_kedro.tasks import build_chat_prompts

MIXING = {"mixing": {"total_size": 4, "per_language": 1, "language_order": ["es", "de"]}}
TRANSLATION = {"prompt_languages": ["de"], "eval_languages": ["en", "de"]}
GOOD = "### Human: What is two plus two?### Assistant: Two plus two is four."


# --------------------------------------------------------------------------- raw sources


def test_broken_jsonl_line_names_file_and_line(tmp_path, fault_figures):
    path = tmp_path / "guanaco.jsonl"
    path.write_text("\n".join([json.dumps({"text": GOOD}), json.dumps({"text": GOOD}), '{"text": "### Human: hi', ""]))
    with pytest.raises(DatasetError, match=r"guanaco\.jsonl, line 3: invalid JSON"):
        HubOrLocalDataset(source=str(path)).load()
    fault_figures(faults_injected=1, clear_errors=1)


def test_non_object_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"instruction": "Hi"}) + "\n" + json.dumps(["not", "an", "object"]) + "\n")
    with pytest.raises(DatasetError, match=r"prompts\.jsonl, line 2: expected a JSON object"):
        HubOrLocalDataset(source=str(path)).load()


def test_non_utf8_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "guanaco.jsonl"
    path.write_bytes(json.dumps({"text": GOOD}).encode() + b'\n{"text": "caf\xe9 \xff"}\n')
    with pytest.raises(DatasetError) as info:
        HubOrLocalDataset(source=str(path)).load()
    assert "guanaco.jsonl" in str(info.value)
    assert "line 2" in str(info.value), str(info.value)


# --------------------------------------------------------------------------- missing columns


def _missing_column_cases():
    gen = pd.DataFrame({"model": ["m"], "mix": ["mono"], "task": ["chat"], "lang": ["en"], "prompt_setting": ["native"],
                        "seed": [0], "item_id": ["c1"], "prompt": ["### Human: Hi### Assistant:"], "output": ["Hello"],
                        "question": ["Hi"], "options": ["null"], "reference": [None]})  # fmt: skip
    return [
        ("data_mixing.parse_guanaco_rows", "text", lambda: parse_guanaco_rows(pd.DataFrame({"txt": [GOOD]}), MIXING)),
        ("data_mixing.identify_languages", "turns",
         lambda: identify_languages(pd.DataFrame({"id": ["g00000"], "text": [GOOD]}), MIXING)),
        ("data_mixing.build_mixes", "keep",
         lambda: build_mixes(pd.DataFrame({"id": ["g0"], "text": [GOOD], "lang": ["en"]}), MIXING, {"mono": {"kind": "mono"}})),
        ("translation.translate_prompts", "instruction",
         lambda: translation.translate_prompts(pd.DataFrame({"id": ["a"], "lang": ["en"], "prompt": ["Hi"]}), None, TRANSLATION, {})),
        ("translation.translate_guanaco", "target_lang",
         lambda: translation.translate_guanaco(pd.DataFrame({"id": ["g0"], "text": [GOOD]}), None, TRANSLATION, {})),
        ("finetuning.training_rows", "text", lambda: training_rows(pd.DataFrame({"id": ["g0"], "body": [GOOD]}), "all")),
        ("inference.build_chat_prompts", "instruction",
         lambda: build_chat_prompts(pd.DataFrame({"id": ["a"], "lang": ["en"], "prompt": ["Hi"]}), ["en"])),
        ("judging.detect_chat_languages", "output",
         lambda: judging.detect_chat_languages(gen.drop(columns="output"), {})),
        ("judging.score_tasks", "reference",
         lambda: score_tasks(gen.drop(columns="reference"), None, "mono")),
        ("reporting.combine_scores", "metric",
         lambda: combine_scores(mono=pd.DataFrame({"mix": ["mono"], "score": [1.0]}))),
    ]  # fmt: skip


@pytest.mark.parametrize("stage, column, call", _missing_column_cases(), ids=[c[0] for c in _missing_column_cases()])
def test_missing_column_error_names_the_column(stage, column, call, fault_figures):
    with pytest.raises((ValueError, KeyError)) as info:
        call()
    assert column in str(info.value), f"{stage}: {info.value!r}"
    fault_figures(stage=stage, error_type=type(info.value).__name__, names_column=True)


# --------------------------------------------------------------------------- unknown language codes


def test_mix_language_order_with_unknown_code_fails_naming_it():
    lid = pd.DataFrame({"id": ["g0", "g1"], "text": [GOOD, GOOD], "lang": ["en", "en"], "keep": [True, True]})
    params = {"mixing": {"total_size": 2, "per_language": 1, "language_order": ["xx"]}}
    with pytest.raises(ShortSupplyError, match=r"'xx'.*need 1, supply 0"):
        build_mixes(lid, params, {"multi2": {"kind": "multi", "n_languages": 2}})


def test_translation_into_unknown_code_fails_naming_it():
    raw = pd.DataFrame({"id": ["a"], "lang": ["en"], "instruction": ["Hi"]})
    endpoints = {"translator": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}}
    with pytest.raises(ValueError, match=r"no name for language 'xx'"):
        translation.translate_prompts(raw, None, {**TRANSLATION, "prompt_languages": ["xx"]}, endpoints)


def test_chat_prompt_with_unknown_language_is_not_silently_dropped():
    raw = pd.DataFrame({"id": ["a", "b", "c"], "lang": ["en", "de", "xx"], "instruction": ["Hi", "Hallo", "Bonjour"]})
    try:
        out = translation.assemble_chat_prompts(raw, {}, {**TRANSLATION, "prompt_languages": []})
    except ValueError as exc:
        assert "xx" in str(exc)
        return
    assert "c" in set(out["id"]), "row c (lang 'xx') disappeared without an error or a rejected row"


# --------------------------------------------------------------------------- empty prompts / rows


def test_empty_english_prompt_fails_naming_the_row():
    raw = pd.DataFrame({"id": ["a1", "a2"], "lang": ["en", "en"], "instruction": ["Hi", "   "]})
    with pytest.raises(ValueError, match=r"empty or non-string 'instruction' in rows with id \['a2'\]"):
        translation.english_prompts(raw)


def test_empty_native_prompt_is_caught_at_the_inference_boundary():
    raw = pd.DataFrame({"id": ["a1", "d1", "d2"], "lang": ["en", "de", "de"], "instruction": ["Hi", "Hallo", ""]})
    chat = translation.assemble_chat_prompts(raw, {}, {**TRANSLATION, "prompt_languages": []})
    assert list(chat["id"]) == ["a1", "d1", "d2"]  # passed through as documented (native rows kept as is)
    with pytest.raises(ValueError, match=r"row id='d2' lang=de: empty field 'instruction'"):
        build_chat_prompts(chat, ["en", "de"])


def test_unparsable_guanaco_rows_go_to_rejected_and_valid_rows_stay(fault_figures):
    texts = [GOOD, "### Human: ### Assistant: an answer to nothing", "no markers at all", None,
             "### Human: Hola, ¿qué tal?### Assistant: Muy bien, gracias."]
    parsed, rejected = parse_guanaco_rows(pd.DataFrame({"text": texts}), MIXING)
    assert list(parsed["id"]) == ["g00000", "g00004"]  # both valid rows, with their row-based ids
    assert sorted(rejected["row"]) == [1, 2, 3]
    assert rejected["reason"].str.len().gt(0).all()
    fault_figures(rows=len(texts), faults_injected=3, rejected_with_reason=len(rejected),
                  valid_kept=len(parsed), items_lost=2 - len(parsed))  # fmt: skip


def test_judging_generation_with_broken_reference_names_the_row():
    gen = pd.DataFrame({"model": ["m"], "mix": ["mono"], "task": ["xquad"], "lang": ["de"], "prompt_setting": ["de:de"],
                        "seed": [0], "item_id": ["q7"], "prompt": ["### Human: Q### Assistant:"], "output": ["x"],
                        "question": ["Q"], "options": ["null"], "reference": ["[not json"]})  # fmt: skip
    with pytest.raises(ValueError, match=r"item_id=q7\): field 'reference' is not JSON"):
        score_tasks(gen, None, "mono")
