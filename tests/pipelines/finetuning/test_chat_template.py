"""Training with ``prompt_format: chat_template``: TRL renders the rows with the template inference uses."""

from __future__ import annotations

import shutil

import pytest

from polyglot_kedro.config import resolve_model
from polyglot_kedro.modeling import load_tokenizer
from polyglot_kedro.pipelines.finetuning.nodes import build_trainer, train_lora, training_rows
from polyglot_kedro.pipelines.finetuning.params import FinetuningParams
from polyglot_kedro.prompting import chat_template_prompt

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def chat_model(base_model, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("chat") / "model"
    shutil.copytree(base_model, folder)
    tok = load_tokenizer(folder)
    tok.chat_template = CHATML
    tok.save_pretrained(folder)
    return str(folder)


def _spec(folder: str):
    return resolve_model({"chat": {"source": "local", "local_path": folder, "prompt_format": "chat_template"}}, "chat")


def test_rows_are_conversational_turns(train_mix):
    rows = training_rows(train_mix, "all", prompt_format="chat_template")
    assert rows[0] == {"messages": [{"role": "user", "content": "What is the capital of France?"},
                                    {"role": "assistant", "content": "The capital of France is Paris."}]}  # fmt: skip
    last = training_rows(train_mix, "assistant", prompt_format="chat_template")[-1]  # the multi-turn row
    assert [m["role"] for m in last["prompt"]] == ["user", "assistant", "user"]
    assert last["completion"] == [{"role": "assistant", "content": "Owls can rotate their heads about 270 degrees."}]
    with pytest.raises(ValueError, match="chat_template re-renders the turns; it needs finetuning.text_format 'rendered'"):
        training_rows(train_mix, "all", "raw_guanaco", "chat_template")


@pytest.mark.parametrize("loss_on", ["all", "assistant"])
def test_the_trainer_sees_the_template_inference_prompts_with(loss_on, train_mix, chat_model, finetuning_params, tmp_path):
    params = FinetuningParams.model_validate({**finetuning_params, "loss_on": loss_on})
    trainer, _ = build_trainer(train_mix.iloc[:1], chat_model, _spec(chat_model), params, tmp_path / "out")
    tok = load_tokenizer(chat_model)
    row = trainer.train_dataset[0]
    question, answer = "What is the capital of France?", "The capital of France is Paris."
    # the training prompt is the inference prompt, token for token
    prompt_ids = tok(chat_template_prompt(tok, f"### Human: {question}### Assistant:"), add_special_tokens=True)["input_ids"]
    assert row["input_ids"][: len(prompt_ids)] == prompt_ids
    whole = tok.apply_chat_template([{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                                    tokenize=True)["input_ids"]  # fmt: skip
    assert row["input_ids"][: len(whole)] == whole
    labels = trainer.data_collator([row])["labels"][0].tolist()
    # the reply is always learnt; the prompt only with loss_on all
    assert all(t != -100 for t in labels[len(prompt_ids) : len(whole)])
    assert all((t == -100) == (loss_on == "assistant") for t in labels[: len(prompt_ids)])


def test_chat_template_needs_eos_training(train_mix, chat_model, finetuning_params):
    registry = {"chat": {"source": "local", "local_path": chat_model, "prompt_format": "chat_template"}}
    with pytest.raises(ValueError, match="model 'chat': prompt_format chat_template needs finetuning.train_eos: true"):
        train_lora(train_mix, chat_model, "chat", registry, {**finetuning_params, "train_eos": False}, "mono")
