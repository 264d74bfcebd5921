"""Inference with ``prompt_format: chat_template``: the model sees its own template; rows say so."""

from __future__ import annotations

import shutil

from polyglot_kedro.modeling import load_tokenizer
from polyglot_kedro.pipelines.inference.nodes import build_eval_prompts, generate_outputs
from polyglot_kedro.prompting import chat_template_prompt

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_rows_record_the_prompt_format_and_the_prompt_the_model_saw(
    tiny_model_dir, tmp_path, chat_prompts, xquad_raw, xcsqa_raw, inference_params, models
):
    folder = tmp_path / "chat_model"
    shutil.copytree(tiny_model_dir, folder)
    tok = load_tokenizer(folder)
    tok.chat_template = CHATML
    tok.save_pretrained(folder)  # as a chat model's folder holds it (chat_template.jinja)
    inference_params["seeds"] = [0]
    inference_params["tasks"]["xcsqa"]["enabled"] = False
    prompts = build_eval_prompts(chat_prompts, xquad_raw, xcsqa_raw, inference_params)
    registry = {**models, "chat_test": {"source": "local", "local_path": str(folder), "dtype": "float32",
                                        "max_model_len": 512, "prompt_format": "chat_template"}}  # fmt: skip

    chat = generate_outputs(str(folder), prompts, inference_params, "chat_test", registry, mix_name="mono")
    guanaco = generate_outputs(str(folder), prompts, inference_params, "tiny_test", registry, mix_name="base")

    assert (chat["prompt_format"] == "chat_template").all() and (guanaco["prompt_format"] == "guanaco").all()
    by_key = prompts.set_index(["task", "lang", "prompt_setting", "item_id"])["prompt"]
    for row in chat.itertuples(index=False):
        source = by_key[(row.task, row.lang, row.prompt_setting, row.item_id)]
        assert row.prompt == chat_template_prompt(tok, source)
        assert row.prompt.startswith("<|im_start|>user\n") and "### Human:" not in row.prompt
    assert guanaco["prompt"].str.startswith("### Human:").all()
    xquad = chat[chat["task"] == "xquad"]
    assert len(xquad) and xquad["prompt"].str.contains("<|im_start|>assistant\n", regex=False).all()
