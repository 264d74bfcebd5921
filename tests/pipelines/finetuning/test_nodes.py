"""Finetuning nodes on the tiny model (CPU, seconds)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import TrainerCallback

from polyglot_kedro.config import resolve_model
from polyglot_kedro.pipelines.finetuning.nodes import build_trainer, train_lora, training_rows
from polyglot_kedro.pipelines.finetuning.params import FinetuningParams, gradient_accumulation_steps
from polyglot_kedro.prompting import format_guanaco, parse_guanaco


def test_effective_batch_split():
    assert gradient_accumulation_steps(64, 4, 1) == 16
    assert gradient_accumulation_steps(64, 4, 4) == 4
    with pytest.raises(ValueError, match="effective_batch_size 64 .* per_device_batch_size 4 x world_size 3"):
        gradient_accumulation_steps(64, 4, 3)
    with pytest.raises(ValueError, match="effective_batch_size 4 .* per_device_batch_size 8"):
        gradient_accumulation_steps(4, 8, 1)
    with pytest.raises(ValueError, match="effective_batch_size 5 is not a multiple of per_device_batch_size 2"):
        FinetuningParams.model_validate({"effective_batch_size": 5, "per_device_batch_size": 2})


def test_params_typo_fails_fast():
    with pytest.raises(ValueError, match="learning_rat"):
        FinetuningParams.model_validate({"learning_rat": 1e-5})


def test_training_rows_formats(train_mix):
    rows = training_rows(train_mix, "all")
    assert rows[0]["text"] == "### Human: What is the capital of France?### Assistant: The capital of France is Paris."
    rows = training_rows(train_mix, "assistant")
    multi = rows[-1]
    # Multi-turn: the last reply is the completion, everything before it the prompt.
    assert multi["prompt"] == (
        "### Human: Hi there!### Assistant: Hello! How can I help?### Human: Tell me a fact about owls.### Assistant:"
    )
    assert multi["completion"] == " Owls can rotate their heads about 270 degrees."
    assert multi["prompt"] + multi["completion"] == format_guanaco(parse_guanaco(train_mix["text"].iloc[-1]))


def test_training_rows_bad_row_names_id():
    bad = pd.DataFrame({"id": ["g00000", "g00001"], "text": ["### Human: hi ### Assistant: ho", "no markers"]})
    with pytest.raises(ValueError, match="g00001"):
        training_rows(bad, "all")
    with pytest.raises(ValueError, match="lacks column"):
        training_rows(bad.drop(columns="text"), "all")


@pytest.mark.parametrize("loss_on", ["assistant", "all"])
def test_assistant_only_masking(loss_on, train_mix, base_model, models_registry, finetuning_params, tmp_path):
    params = FinetuningParams.model_validate({**finetuning_params, "loss_on": loss_on})
    spec = resolve_model(models_registry, "tiny_llama")
    trainer, _ = build_trainer(train_mix, base_model, spec, params, tmp_path / "out")
    tok = trainer.processing_class
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (0, len(train_mix) - 1)])
    rows = training_rows(train_mix, "assistant")
    for b, row in zip(range(2), (rows[0], rows[-1])):
        ids, labels = batch["input_ids"][b], batch["labels"][b]
        attended = batch["attention_mask"][b].bool() if "attention_mask" in batch else torch.ones_like(ids).bool()
        n_prompt = len(tok(row["prompt"])["input_ids"])
        n_total = int(attended.sum())
        first = int(attended.nonzero()[0])
        prompt_labels = labels[first : first + n_prompt]
        target_labels = labels[first + n_prompt : first + n_total]
        if loss_on == "assistant":
            assert (prompt_labels == -100).all()
        else:
            assert (prompt_labels != -100).all()
        # The reply (and its EOS) is always a target.
        assert (target_labels != -100).all() and len(target_labels) > 0
        assert int(ids[first + n_total - 1]) == tok.eos_token_id


class _LossRecorder(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_loss_goes_down(train_mix, base_model, models_registry, finetuning_params):
    params = {**finetuning_params, "max_steps": 40, "save_steps": 40, "save_total_limit": 1, "learning_rate": 5e-3}
    adapter, metrics = train_lora(train_mix, base_model, "tiny_llama", models_registry, params, mix_name="mono")
    losses = [p["loss"] for p in metrics["loss_curve"]]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, (first, last)
    assert metrics["mix"] == "mono" and metrics["rows"] == len(train_mix)
    assert metrics["tokens_seen"] > 40 * 4 * 10
    assert metrics["tokens_per_second"] > 0 and metrics["peak_rss_mib"] > 0
    assert metrics["config"]["gradient_accumulation_steps"] == 2
    assert metrics["config"]["sft"]["max_length"] == 128
    json.dumps(metrics)  # the metrics dataset is JSON
    cfg = json.loads((__import__("pathlib").Path(adapter) / "adapter_config.json").read_text())
    assert cfg["r"] == 8 and cfg["peft_type"] == "LORA"


class _Interrupt(TrainerCallback):
    """Simulates a crash right after the checkpoint of step ``at`` is written."""

    def __init__(self, at: int):
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"simulated crash after checkpoint-{self.at}")


def test_resume_from_checkpoint(train_mix, base_model, models_registry, finetuning_params, tmp_path):
    params = {**finetuning_params, "max_steps": 6, "save_steps": 3}
    with pytest.raises(KeyboardInterrupt):
        train_lora(train_mix, base_model, "tiny_llama", models_registry, params, mix_name="m",
                   callbacks=[_Interrupt(3)])
    ckpt_root = tmp_path / "ckpt" / "tiny_llama" / "m"
    assert [p.name for p in ckpt_root.glob("checkpoint-*")] == ["checkpoint-3"]
    recorder = _LossRecorder()
    _, metrics = train_lora(train_mix, base_model, "tiny_llama", models_registry, params, mix_name="m",
                            callbacks=[recorder])
    assert metrics["resumed_from_checkpoint"] is True
    assert recorder.steps == [4, 5, 6]  # continued after step 3, not from 0
    assert metrics["global_step"] == 6
    assert [p["step"] for p in metrics["loss_curve"]] == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_other_run(train_mix, base_model, models_registry, finetuning_params):
    params = {**finetuning_params, "max_steps": 3, "save_steps": 3}
    train_lora(train_mix, base_model, "tiny_llama", models_registry, params, mix_name="m")
    changed = {**params, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}
    with pytest.raises(ValueError, match="different run"):
        train_lora(train_mix, base_model, "tiny_llama", models_registry, changed, mix_name="m")


def test_trailing_unanswered_human_turn_is_trainable():
    """Real Guanaco rows may end with a question; data mixing keeps them, so training must too."""
    import pandas as pd

    from polyglot_kedro.pipelines.finetuning.nodes import training_rows

    mix = pd.DataFrame({"id": ["g1"], "text": ["### Human: a ### Assistant: b ### Human: c"]})
    assert training_rows(mix, "all") == [{"text": "### Human: a### Assistant: b### Human: c"}]
    assert training_rows(mix, "assistant") == [{"prompt": "### Human: a### Assistant:", "completion": " b"}]


# --------------------------------------------------------------------------- the released code's training text


def test_raw_guanaco_rows_are_the_dataset_text_plus_nothing(train_mix):
    rows = training_rows(train_mix, "all", "raw_guanaco")
    assert rows == [{"text": text} for text in train_mix["text"]]
    # The raw text keeps Guanaco's " ### Assistant:" spacing that rendering removes.
    assert rows[0]["text"] != training_rows(train_mix, "all")[0]["text"]
    with pytest.raises(ValueError, match="id='g1'.*empty"):
        training_rows(pd.DataFrame({"id": ["g0", "g1"], "text": ["### Human: a ### Assistant: b", " "]}),
                      "all", "raw_guanaco")


def test_raw_text_without_eos_is_what_the_trainer_sees(train_mix, base_model, models_registry, finetuning_params,
                                                        tmp_path):
    params = FinetuningParams.model_validate({**finetuning_params, "text_format": "raw_guanaco", "train_eos": False})
    spec = resolve_model(models_registry, "tiny_llama")
    trainer, resolved = build_trainer(train_mix, base_model, spec, params, tmp_path / "out")
    tok = trainer.processing_class
    assert resolved["text_format"] == "raw_guanaco" and resolved["train_eos"] is False
    for i, text in enumerate(train_mix["text"]):
        example = trainer.train_dataset[i]
        # Exactly the tokenizer's encoding of the dataset text: no EOS appended, nothing re-rendered.
        assert example["input_ids"] == tok(text)["input_ids"]
        assert tok.eos_token_id not in example["input_ids"]
        assert tok.decode(example["input_ids"], skip_special_tokens=True) == text
        assert example["labels"] == example["input_ids"]  # loss on the whole text
    # The embedded default (TRL appends and trains an EOS) differs exactly there.
    default = FinetuningParams.model_validate({**finetuning_params, "text_format": "raw_guanaco"})
    trainer_eos, _ = build_trainer(train_mix, base_model, spec, default, tmp_path / "out_eos")
    first = trainer_eos.train_dataset[0]["input_ids"]
    assert first[-1] == tok.eos_token_id and first[:-1] == tok(train_mix["text"].iloc[0])["input_ids"]


def test_eos_in_the_text_is_masked_like_padding():
    from polyglot_kedro.pipelines.finetuning.nodes import tokenize_without_eos

    class _Tok:
        eos_token_id = 2

        def __call__(self, text, truncation, max_length):
            return {"input_ids": [1, 5, 2, 6, 7][:max_length]}

    assert tokenize_without_eos([{"text": "x"}], _Tok(), 4) == [{"input_ids": [1, 5, 2, 6], "labels": [1, 5, -100, 6]}]


def test_released_settings_need_whole_text_loss():
    with pytest.raises(ValueError, match="raw_guanaco trains on the whole text; it needs loss_on: all"):
        FinetuningParams.model_validate({"text_format": "raw_guanaco", "loss_on": "assistant"})
    with pytest.raises(ValueError, match="train_eos: false .* needs loss_on: all"):
        FinetuningParams.model_validate({"train_eos": False, "loss_on": "assistant"})
    with pytest.raises(ValueError, match="text_forma"):
        FinetuningParams.model_validate({"text_forma": "raw_guanaco"})


def test_autocast_flags_and_their_errors(monkeypatch):
    from polyglot_kedro.pipelines.finetuning import nodes

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert nodes.resolve_autocast("auto") == {"bf16": False, "fp16": False}
    assert nodes.resolve_autocast("none") == {"bf16": False, "fp16": False}
    with pytest.raises(ValueError, match="autocast is fp16 .* needs a CUDA GPU"):
        nodes.resolve_autocast("fp16")
    with pytest.raises(ValueError, match="autocast is bf16 but no bf16-capable GPU"):
        nodes.resolve_autocast("bf16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert nodes.resolve_autocast("fp16") == {"bf16": False, "fp16": True}
    assert nodes.resolve_autocast("auto") == {"bf16": True, "fp16": False}


@pytest.mark.gpu
def test_released_precision_fp32_weights_fp16_autocast(train_mix, base_model, models_registry, finetuning_params,
                                                       tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    registry = {"tiny_llama": {**models_registry["tiny_llama"], "dtype": "float16"}}
    params = FinetuningParams.model_validate(
        {**finetuning_params, "precision": {"weights": "float32", "autocast": "fp16"}})
    trainer, resolved = build_trainer(train_mix, base_model, resolve_model(registry, "tiny_llama"), params,
                                      tmp_path / "out")
    assert resolved["dtype"] == "float32" and trainer.args.fp16 and not trainer.args.bf16
    trainer.train()
