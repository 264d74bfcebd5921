"""Task prompt builders: the paper's exact XQuAD/X-CSQA prompts, every language and setting, XNLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from polyglot_kedro.contracts import PROMPT_COLUMNS
from polyglot_kedro.prompting import guanaco_prompt
from polyglot_kedro.tasks import (
    build_chat_prompts,
    build_xcsqa_prompts,
    build_xquad_prompts,
    load_task_template,
    template_version,
    xcsqa_prompt,
    xquad_answer_close,
    xquad_prompt,
)
from polyglot_kedro.tasks.templates import UnknownLanguageError
from polyglot_kedro.tasks.xnli import lm_eval_xnli_choices, write_xnli_task

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _squad_items(path: Path):
    data = json.loads(path.read_text(encoding="utf-8"))
    for article in data["data"]:
        for par in article["paragraphs"]:
            for qa in par["qas"]:
                yield par["context"], qa["question"]


@pytest.mark.parametrize(
    "prompt_file, data_lang, prompt_lang",
    [("xquad_dev_en_en.json", "en", "en"), ("xquad_dev_en_de.json", "de", "en"), ("xquad_dev_de_de.json", "de", "de")],
)
def test_xquad_reproduces_paper_prompts(prompt_file, data_lang, prompt_lang):
    prompts, data = SHARED / "xquad_prompts" / prompt_file, SHARED / "xquad" / f"xquad.{data_lang}.json"
    if not (prompts.exists() and data.exists()):
        pytest.skip("shared XQuAD files absent")
    with prompts.open(encoding="utf-8") as f:
        lines = [next(f) for _ in range(25)]
    for line, (context, question) in zip(lines, _squad_items(data)):
        assert xquad_prompt(context, question, prompt_lang) == json.loads(line)["instruction"]


@pytest.mark.parametrize("prompt_file, lang", [("xcsqa_dev_en_en.first22.jsonl", "en"), ("xcsqa_dev_de_de.first21.jsonl", "de")])
def test_xcsqa_reproduces_paper_prompts(prompt_file, lang):
    path = SHARED / "xcsqa" / prompt_file
    if not path.exists():
        pytest.skip("shared X-CSQA files absent")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for r in rows:
        assert xcsqa_prompt(r["question"], r["options"], lang) == r["instruction"]


@pytest.mark.parametrize("lang", sorted(load_task_template("xquad")["languages"]))
def test_xquad_builder_every_language_and_setting(lang):
    raw = pd.DataFrame(
        {"id": ["a"], "lang": [lang], "context": ["  Ctx 308.  "], "question": [" Q? "], "answers": [[{"text": "308"}]]}
    )
    out = build_xquad_prompts(raw, [lang], ["en:xx", "xx:xx"])
    assert list(out["prompt_setting"]) == ["en:xx", "xx:xx"]
    parts = load_task_template("xquad")["languages"]
    en_prompt, xx_prompt = out["prompt"]
    assert en_prompt.startswith("### Human: " + parts["en"]["instruction"])
    assert en_prompt.endswith("### Assistant: " + parts["en"]["assistant_prefix"])
    assert xx_prompt.startswith("### Human: " + parts[lang]["instruction"])
    assert xx_prompt.endswith("### Assistant: " + parts[lang]["assistant_prefix"])
    assert "\n\nCtx 308.\n\n" in xx_prompt and "\n\nQ?\n\n" in xx_prompt
    assert json.loads(out["reference"].iloc[0]) == ["308"]
    assert out["question"].tolist() == [" Q? ", " Q? "]  # carried as in the source row
    assert out["options"].map(json.loads).isna().all()
    assert list(out.columns) == PROMPT_COLUMNS
    assert xquad_answer_close(lang)


@pytest.mark.parametrize("lang", sorted(load_task_template("xcsqa")["languages"]))
def test_xcsqa_builder_every_language(lang):
    raw = pd.DataFrame(
        {"id": ["x"], "lang": [lang], "question": ["Q?"], "options": [["o1", "o2", "o3", "o4", "o5"]], "answer": ["D"]}
    )
    out = build_xcsqa_prompts(raw, [lang], ["xx:xx"])
    prompt = out["prompt"].iloc[0]
    parts = load_task_template("xcsqa")["languages"][lang]
    assert prompt.startswith("### Human: " + parts["instruction"])
    assert "A: o1\nB: o2\nC: o3\nD: o4\nE: o5" in prompt
    assert prompt.endswith('### Assistant: "')
    assert json.loads(out["reference"].iloc[0]) == "D"
    assert out["question"].iloc[0] == "Q?" and json.loads(out["options"].iloc[0]) == ["o1", "o2", "o3", "o4", "o5"]


def test_xcsqa_bad_rows_name_the_row():
    raw = pd.DataFrame({"id": ["x7"], "lang": ["en"], "question": ["Q?"], "options": [["a", "b"]], "answer": ["A"]})
    with pytest.raises(ValueError, match="id='x7'.*options"):
        build_xcsqa_prompts(raw, ["en"], ["xx:xx"])
    raw = pd.DataFrame({"id": ["x8"], "lang": ["en"], "question": ["Q?"], "options": [list("abcde")], "answer": ["F"]})
    with pytest.raises(ValueError, match="id='x8'.*answer"):
        build_xcsqa_prompts(raw, ["en"], ["xx:xx"])
    with pytest.raises(ValueError, match="missing column"):
        build_xcsqa_prompts(raw.drop(columns=["options"]), ["en"], ["xx:xx"])
    raw = pd.DataFrame({"id": ["x9"], "lang": ["en"], "question": [" "], "options": [list("abcde")], "answer": ["A"]})
    with pytest.raises(ValueError, match="id='x9'.*empty field 'question'"):
        build_xcsqa_prompts(raw, ["en"], ["xx:xx"])


def test_chat_prompts_in_guanaco_template():
    raw = pd.DataFrame({"id": ["1", "2", "1"], "lang": ["en", "en", "de"], "instruction": ["Hi?", "Yo?", "Hallo?"]})
    out = build_chat_prompts(raw, ["en", "de"], limit=1)
    assert list(out["prompt"]) == [guanaco_prompt("Hi?"), guanaco_prompt("Hallo?")]
    assert set(out["prompt_setting"]) == {"native"} and list(out["lang"]) == ["en", "de"]
    assert out["prompt"].iloc[0] == "### Human: Hi?### Assistant:"
    assert list(out["question"]) == ["Hi?", "Hallo?"]  # the instruction, carried for the judge


def test_unknown_language_and_setting_are_errors():
    raw = pd.DataFrame({"id": ["a"], "lang": ["sw"], "context": ["c"], "question": ["q"], "answers": [["x"]]})
    with pytest.raises(UnknownLanguageError, match="'sw'"):
        build_xquad_prompts(raw, ["sw"], ["xx:xx"])
    with pytest.raises(ValueError, match="prompt setting"):
        build_xquad_prompts(raw, ["sw"], ["native"])


def test_templates_are_versioned():
    for task in ("chat", "xquad", "xcsqa", "xnli"):
        assert template_version(task).startswith(f"{task}@v")


def test_xnli_task_uses_lm_eval_words(tmp_path):
    assert "richtig? Ja, " in lm_eval_xnli_choices("de")
    assert ", right? Also, " in lm_eval_xnli_choices("en")
    with pytest.raises(ValueError, match="no xnli task for language 'sv'"):
        lm_eval_xnli_choices("sv")
    rows = pd.DataFrame({"id": ["n1"], "premise": ["P"], "hypothesis": ["H"], "label": ["contradiction"]})
    task = write_xnli_task(rows, "en", tmp_path)
    assert json.loads((tmp_path / "xnli_en.jsonl").read_text())["label"] == 2
    assert (tmp_path / f"{task}.yaml").exists()
    with pytest.raises(ValueError, match="id='n1'.*label"):
        write_xnli_task(rows.assign(label="maybe"), "en", tmp_path)
