"""Prompt formats: the tokenizer's own chat template beside the paper's Guanaco format (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from llm_server import make_tiny_causal_lm
from tokenizers.processors import TemplateProcessing

from polyglot_kedro.config import ModelSpec, resolve_model
from polyglot_kedro.modeling import load_tokenizer
from polyglot_kedro.pipelines.judging.scores import fill_engines
from polyglot_kedro.prompting import (
    GuanacoParseError,
    chat_template_prompt,
    check_prompt_format,
    guanaco_to_messages,
    render_prompts,
)

ROOT = Path(__file__).resolve().parents[1]
# Llama 3's template in miniature: BOS first, header tokens, an end-of-turn token, a generation prompt.
LLAMA3_STYLE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
    " + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> str:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny_chat") / "model")


def _tokenizer(folder: str, *, adds_bos: bool):
    tok = load_tokenizer(folder)
    tok.chat_template = LLAMA3_STYLE
    if adds_bos:  # as Llama's tokenizers do: BOS in front of every encoded text
        tok.backend_tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    return tok


CASES = [
    ("### Human: Nenne eine Farbe.### Assistant:", [{"role": "user", "content": "Nenne eine Farbe."}], ""),
    ("### Human: Context: X. Question: Y?### Assistant: Answer:", [{"role": "user", "content": "Context: X. Question: Y?"}],
     "Answer:"),
    ("### Human: Hi### Assistant: Hello!### Human: Why?### Assistant:",
     [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Why?"}], ""),
]  # fmt: skip


@pytest.mark.parametrize("adds_bos", [False, True])
@pytest.mark.parametrize(("prompt", "messages", "prefix"), CASES)
def test_prompt_from_the_tokenizers_template_equals_apply_chat_template(tiny_folder, adds_bos, prompt, messages, prefix):
    tok = _tokenizer(tiny_folder, adds_bos=adds_bos)
    assert guanaco_to_messages(prompt) == (messages, prefix)
    rendered = chat_template_prompt(tok, prompt)
    expected = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # the engines tokenize with add_special_tokens=True: exactly the template's ids, BOS once
    ids = tok(rendered, add_special_tokens=True)["input_ids"]
    template_ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    assert ids == template_ids + prefix_ids
    assert ids.count(tok.bos_token_id) == 1
    assert rendered.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n" + prefix)
    assert (rendered == expected + prefix) != adds_bos  # with a BOS-adding tokenizer the template's BOS is left to it


def test_default_stays_guanaco_and_unknown_formats_are_named(tiny_folder):
    prompts = ["### Human: a### Assistant:"]
    assert render_prompts(prompts, "guanaco") == prompts
    assert ModelSpec(name="m", source="local", local_path="/x").prompt_format == "guanaco"
    with pytest.raises(ValueError, match="unknown prompt_format 'chatml'"):
        render_prompts(prompts, "chatml", load_tokenizer(tiny_folder))
    with pytest.raises(ValueError, match="unknown prompt_format 'chatml'.*valid: \\['guanaco', 'chat_template'\\]"):
        check_prompt_format(None, "chatml", "m")
    with pytest.raises(ValueError, match="prompt_format"):
        ModelSpec.model_validate({"name": "m", "source": "local", "local_path": "/x", "prompt_format": "chatml"})
    with pytest.raises(ValueError, match="prompt_template is now prompt_format"):
        ModelSpec.model_validate({"name": "m", "source": "local", "local_path": "/x", "prompt_template": "guanaco"})
    with pytest.raises(GuanacoParseError, match="must end with '### Assistant:'"):
        render_prompts(["### Human: no assistant marker"], "chat_template", _tokenizer(tiny_folder, adds_bos=False))


def test_chat_template_on_a_tokenizer_without_one_names_the_model(tiny_folder):
    with pytest.raises(ValueError, match="model 'my_chat_model': prompt_format chat_template, but its tokenizer has no"):
        check_prompt_format(load_tokenizer(tiny_folder), "chat_template", "my_chat_model")
    check_prompt_format(_tokenizer(tiny_folder, adds_bos=False), "chat_template", "my_chat_model")
    # a tiny model's tokenizer never has one: refused when the registry is validated (kedro start-up)
    with pytest.raises(ValueError, match="model 't'.*tiny model's tokenizer has no chat template"):
        resolve_model({"t": {"source": "tiny", "tiny": {}, "prompt_format": "chat_template"}}, "t")


def test_base_model_preparation_refuses_a_chat_template_entry_without_template(tiny_folder, tmp_path):
    import pandas as pd

    from polyglot_kedro.pipelines.base_model.nodes import prepare_base_model

    models = {"local_chat": {"source": "local", "local_path": tiny_folder, "prompt_format": "chat_template"}}
    with pytest.raises(ValueError, match="model 'local_chat': prompt_format chat_template"):
        prepare_base_model(pd.DataFrame({"text": ["x"]}), pd.DataFrame({"instruction": ["y"]}), "local_chat", models,
                           {"work_dir": str(tmp_path / "prepared")})  # fmt: skip


def test_registry_has_a_current_chat_family_with_its_own_template():
    models = yaml.safe_load((ROOT / "conf" / "base" / "parameters_models.yml").read_text())["models"]
    chat = {name: resolve_model(models, name) for name in models if models[name].get("prompt_format") == "chat_template"}
    assert "llama3_1_8b_instruct" in chat
    assert chat["llama3_1_8b_instruct"].hub_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert all(spec.source == "hub" and spec.revision for spec in chat.values())
    # the paper's models keep the paper's format
    assert {resolve_model(models, n).prompt_format for n in ("llama2_7b", "tiny_llama")} == {"guanaco"}


def test_score_rows_carry_the_prompt_format_of_their_generation():
    import pandas as pd

    keys = {"model": "m", "mix": "mono", "task": "chat", "lang": "de", "prompt_setting": "native", "seed": 0}
    gens = pd.DataFrame([{**keys, "item_id": "1", "engine": "transformers", "prompt_truncated": False,
                          "prompt_format": "chat_template"}])  # fmt: skip
    rows = fill_engines([{**keys, "item_id": "1"}, {**keys, "task": "xnli", "item_id": "9", "engine": "lm-eval"}], gens)
    assert [r["prompt_format"] for r in rows] == ["chat_template", "none"]
    old = gens.drop(columns="prompt_format")  # generations written before the column: all Guanaco
    assert fill_engines([{**keys, "item_id": "1"}], old)[0]["prompt_format"] == "guanaco"
