"""Task prompt builders: the paper's own XQuAD/X-CSQA templates (byte-identical) and prompts, every language and setting, XNLI."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from polyglot_kedro.contracts import PROMPT_COLUMNS
from polyglot_kedro.datasets.hub_or_local import HubOrLocalDataset
from polyglot_kedro.prompting import guanaco_prompt
from polyglot_kedro.tasks import (
    build_chat_prompts,
    build_xcsqa_prompts,
    build_xquad_prompts,
    load_task_template,
    task_template,
    template_languages,
    template_set,
    template_version,
    xquad_prompt,
)
from polyglot_kedro.tasks.templates import UnknownLanguageError
from polyglot_kedro.tasks.xnli import lm_eval_xnli_choices, write_xnli_task

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TEMPLATES = SHARED / "task_templates"
PACKAGE_TASKS = resources.files("polyglot_kedro").joinpath("prompts", "tasks")


def _need(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"../shared/data absent: {missing}")


@pytest.mark.parametrize("task", ["xquad", "xcsqa"])
def test_paper_templates_are_byte_identical_copies(task):
    """The versioned copy is the paper's file, byte for byte, and is what the builders read."""
    shared = TEMPLATES / f"{task}_templates.json"
    _need(shared)
    assert PACKAGE_TASKS.joinpath("paper", f"{task}_templates.json").read_bytes() == shared.read_bytes()
    assert template_set(task, "paper") == json.loads(shared.read_text(encoding="utf-8"))["templates"]


@pytest.mark.parametrize("task", ["xquad", "xcsqa"])
def test_own_translations_are_marked_and_never_shadow_the_paper_in_paper_mode(task):
    own = json.loads(PACKAGE_TASKS.joinpath("own", f"{task}_templates.json").read_text(encoding="utf-8"))
    assert "not the paper's" in own["source"]
    paper = template_set(task, "paper")
    for lang in template_languages(task):
        template, source = task_template(task, lang, "paper")
        assert source == ("paper" if lang in paper else "project")
        assert template == (paper[lang] if lang in paper else own["templates"][lang])
        template, source = task_template(task, lang, "project")
        assert source == ("project" if lang in own["templates"] else "paper")


def test_the_paper_lacks_only_french_xquad():
    """The only own translation a paper run uses is XQuAD fr (the paper has none)."""
    assert [l for l in template_languages("xquad") if task_template("xquad", l)[1] == "project"] == ["fr"]
    assert [l for l in template_languages("xcsqa") if task_template("xcsqa", l)[1] == "project"] == []


def _paper_file_text(rows: pd.DataFrame) -> str:
    """The notebook's output format: one json.dumps(..., ensure_ascii=False) line per item."""
    lines = [json.dumps({"instruction": p, "answer": json.loads(r)[0]}, ensure_ascii=False)
             for p, r in zip(rows["prompt"], rows["reference"])]  # fmt: skip
    return "".join(line + "\n" for line in lines)


@pytest.mark.parametrize(
    "prompt_file, data_lang, setting",
    [("xquad_dev_en_en.json", "en", "xx:xx"), ("xquad_dev_en_de.json", "de", "en:xx"), ("xquad_dev_de_de.json", "de", "xx:xx")],
)
def test_xquad_prompts_equal_the_paper_files(prompt_file, data_lang, setting):
    """The project's loader and builder rebuild the paper's whole prompt file (1,190 rows) exactly."""
    prompts, data = SHARED / "xquad_prompts" / prompt_file, SHARED / "xquad" / f"xquad.{data_lang}.json"
    _need(prompts, data)
    raw = HubOrLocalDataset(source={data_lang: {"source": str(data), "format": "squad"}}).load()
    out = build_xquad_prompts(raw, [data_lang], [setting], templates="paper")
    assert len(out) == 1190
    assert _paper_file_text(out) == prompts.read_text(encoding="utf-8")


@pytest.mark.parametrize("prompt_file, lang", [("xcsqa_dev_en_en.first22.jsonl", "en"), ("xcsqa_dev_de_de.first21.jsonl", "de")])
def test_xcsqa_prompts_equal_the_paper_files(prompt_file, lang):
    path = SHARED / "xcsqa" / prompt_file
    _need(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    raw = pd.DataFrame({"id": [str(i) for i in range(len(rows))], "lang": lang, "question": [r["question"] for r in rows],
                        "options": [r["options"] for r in rows], "answer": [r["answer"][0] for r in rows]})  # fmt: skip
    out = build_xcsqa_prompts(raw, [lang], ["xx:xx"], templates="paper")
    assert out["prompt"].tolist() == [r["instruction"] for r in rows]
    # the gold is [letter, option text]: the letter indexes the options
    assert all(r["options"]["ABCDE".index(r["answer"][0])] == r["answer"][1] for r in rows)
    assert [json.loads(g) for g in out["reference"]] == [r["answer"][0] for r in rows]


@pytest.mark.parametrize(
    "lang, start, end",
    [("en", "### Human: ", 'the answer to the question is "'), ("de", "### Human: ", "die Frage „"),
     ("es", "### Human: ", "a la pregunta es «"), ("ru", "### Human: ", "ответ на вопрос: «"),
     ("el", "### Human: ", "στην ερώτηση είναι «"), ("zh", "### Human：", "### Assistant：根据这段文字，该问题的答案是 \""),
     ("hi", "### Human: ", 'प्रश्न का उत्तर है "'), ("vi", "### Human: ", "cho câu hỏi là"),
     ("ar", "### Human:\n\n", "فإن إجابة السؤال هي"), ("th", "### Human: ", 'คำตอบของคำถามคือ "'),
     ("tr", "### Human: ", 'sorunun yanıtı "')],
)  # fmt: skip
def test_xquad_paper_prompts_every_language(lang, start, end):
    """The README's runtime details: prefixes, stripping, zh full-width colons, vi/ar without a quote."""
    prompt = xquad_prompt("  Ctx {x} 308.  ", "\tQ? ", lang)
    assert prompt.startswith(start) and prompt.endswith(end)
    assert "\n\nCtx {x} 308.\n\n" in prompt and "\n\nQ?\n\n" in prompt


@pytest.mark.parametrize("templates", ["paper", "project"])
@pytest.mark.parametrize("lang", template_languages("xquad"))
def test_xquad_builder_every_language_and_setting(lang, templates):
    raw = pd.DataFrame(
        {"id": ["a"], "lang": [lang], "context": ["  Ctx 308.  "], "question": [" Q? "], "answers": [[{"text": "308"}]]}
    )
    out = build_xquad_prompts(raw, [lang], ["en:xx", "xx:xx"], templates=templates)
    assert list(out["prompt_setting"]) == ["en:xx", "xx:xx"]
    en_prompt, xx_prompt = out["prompt"]
    fill = {"context": "Ctx 308.", "question": "Q?"}
    assert en_prompt == task_template("xquad", "en", templates)[0].format(**fill).strip()
    assert xx_prompt == task_template("xquad", lang, templates)[0].format(**fill).strip()
    assert "\n\nCtx 308.\n\n" in xx_prompt and "\n\nQ?\n\n" in xx_prompt
    assert json.loads(out["reference"].iloc[0]) == ["308"]
    assert out["question"].tolist() == [" Q? ", " Q? "]  # carried as in the source row
    assert out["options"].map(json.loads).isna().all()
    assert list(out.columns) == PROMPT_COLUMNS


@pytest.mark.parametrize("templates", ["paper", "project"])
@pytest.mark.parametrize("lang", template_languages("xcsqa"))
def test_xcsqa_builder_every_language(lang, templates):
    raw = pd.DataFrame(
        {"id": ["x"], "lang": [lang], "question": ["Q?"], "options": [["o1", "o2", "o3", "o4", "o5"]], "answer": ["D"]}
    )
    out = build_xcsqa_prompts(raw, [lang], ["xx:xx"], templates=templates)
    prompt = out["prompt"].iloc[0]
    assert prompt.startswith("### Human: ") and "\n\nQ?\n\n" in prompt
    assert "A: o1\nB: o2\nC: o3\nD: o4\nE: o5" + (" " if lang == "de" else "") + "\n\n### Assistant" in prompt
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


def test_unknown_language_setting_and_source_are_errors():
    raw = pd.DataFrame({"id": ["a"], "lang": ["sw"], "context": ["c"], "question": ["q"], "answers": [["x"]]})
    with pytest.raises(UnknownLanguageError, match="'sw'"):
        build_xquad_prompts(raw, ["sw"], ["xx:xx"])
    with pytest.raises(ValueError, match="prompt setting"):
        build_xquad_prompts(raw, ["sw"], ["native"])
    with pytest.raises(ValueError, match="unknown template source 'mine'"):
        build_xquad_prompts(raw.assign(lang="en"), ["en"], ["xx:xx"], templates="mine")


def test_template_version_records_the_set():
    assert template_version("xquad", "paper") == f"xquad@v{load_task_template('xquad')['version']}+paper"
    assert template_version("chat", "paper") == f"chat@v{load_task_template('chat')['version']}"


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



def test_xnli_choice_loglik_is_conditioned_on_the_chosen_prefix_token(tmp_path, monkeypatch):
    """prefix_token eos = the paper's harness (3ccea2b2: loglikelihood_rolling with prefix_token=eot)."""
    import torch
    from lm_eval.api import registry

    from polyglot_kedro.engines.tiny_model import build_tiny_llama
    from polyglot_kedro.modeling import load_causal_lm, load_tokenizer
    from polyglot_kedro.tasks.xnli import run_xnli_loglik

    folder = build_tiny_llama(tmp_path / "tiny", vocab_size=300)
    tok, model = load_tokenizer(folder), load_causal_lm(folder, dtype="float32")
    assert tok.bos_token_id != tok.eos_token_id  # else the two settings could not be told apart
    made = []
    real_get_model = registry.get_model

    def get_model(name):  # the real lm-eval model, its prefix token recorded
        cls = real_get_model(name)

        class Recorded(cls):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                made.append(self.prefix_token_id)

        return Recorded

    monkeypatch.setattr(registry, "get_model", get_model)
    rows = pd.DataFrame({"id": ["n1", "n2"], "lang": "en", "premise": ["A cat sat", "It rained"],
                         "hypothesis": ["An animal sat", "The sky was clear"], "label": ["entailment", "neutral"]})
    words, names = ["Yes", "Also", "No"], ["entailment", "neutral", "contradiction"]
    for prefix, first in (("bos", tok.bos_token_id), ("eos", tok.eos_token_id)):
        got = run_xnli_loglik(str(folder), rows, ["en"], tmp_path / prefix, batch_size=2, dtype="float32",
                              device="cpu", prefix_token=prefix)
        assert made[-1] == first

        def loglik(text: str) -> float:  # the whole choice given only the prefix token, by hand
            ids = [first, *tok(text, add_special_tokens=False)["input_ids"]]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].double(), -1)
            return float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())

        for r in rows.to_dict("records"):
            scores = [loglik(f"{r['premise']}, right? {w}, {r['hypothesis']}") for w in words]
            assert got.set_index("item_id").loc[r["id"], "pred"] == names[max(range(3), key=scores.__getitem__)]
    with pytest.raises(ValueError, match="prefix_token"):
        run_xnli_loglik(str(folder), rows, ["en"], tmp_path / "pad", prefix_token="pad")
