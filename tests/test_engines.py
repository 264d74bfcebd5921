"""Engines on a tiny random Llama: frequency penalty, left padding, stop strings, seeds, vLLM."""

from __future__ import annotations

import importlib.util
import logging

import pytest
import torch

from polyglot_kedro.engines import SamplingSpec, make_engine, resolve_engine_kind
from polyglot_kedro.engines.frequency_penalty import FrequencyPenaltyLogitsProcessor
from polyglot_kedro.engines.tiny_model import build_tiny_llama
from polyglot_kedro.engines.transformers_engine import TransformersEngine
from polyglot_kedro.prompting import cut_at_stop

PROMPTS = [
    "### Human: Name a colour.### Assistant:",
    "### Human: Wie viele Punkte gab die Verteidigung der Panthers ab? Antworte kurz.### Assistant:",
    "Hi",
    "### Human: ¿Cuántos puntos?### Assistant: Según el texto, la respuesta es «",
    "### Human: Сколько очков?### Assistant:",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def engine(tiny_dir) -> TransformersEngine:
    return TransformersEngine(tiny_dir, batch_size=4, dtype="float32", max_model_len=512)


def test_frequency_penalty_hand_computed():
    # prompt [4, 4] (never penalised), generated [1, 1, 3] / [2, 0, 0]
    ids = torch.tensor([[4, 4, 1, 1, 3], [4, 4, 2, 0, 0]])
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    out = FrequencyPenaltyLogitsProcessor(0.5, prompt_length=2)(ids, scores)
    expected = torch.tensor([[1.0, 2.0 - 1.0, 3.0, 4.0 - 0.5, 5.0], [-1.0, 0.0, -0.5, 0.0, 0.0]])
    torch.testing.assert_close(out, expected)
    # nothing generated yet: unchanged
    torch.testing.assert_close(FrequencyPenaltyLogitsProcessor(0.5, 5)(ids, scores), scores)


def test_large_frequency_penalty_prevents_repeats(engine):
    greedy = SamplingSpec(temperature=0.0, frequency_penalty=0.0, max_new_tokens=24, stop=())
    penalised = greedy.model_copy(update={"frequency_penalty": 2.0})
    enc = engine.tokenizer
    base = engine.generate(PROMPTS[:1], greedy, 0)[0]
    pen = engine.generate(PROMPTS[:1], penalised, 0)[0]
    assert base.text != pen.text
    # the tiny random model loops when greedy; with a penalty repeats become rarer
    def repeats(text):
        ids = enc(text, add_special_tokens=False)["input_ids"]
        return len(ids) - len(set(ids))

    assert repeats(pen.text) < repeats(base.text)


def test_left_padding_batched_equals_one_at_a_time(engine):
    greedy = SamplingSpec(temperature=0.0, max_new_tokens=10, stop=())
    batched = engine.generate(PROMPTS, greedy, seed=0)
    single = [engine.generate([p], greedy, seed=0)[0] for p in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.n_output_tokens for g in batched] == [g.n_output_tokens for g in single]
    assert engine.tokenizer.padding_side == "left"


def test_length_finish_reason_and_token_counts(engine):
    gens = engine.generate(PROMPTS, SamplingSpec(temperature=0.0, max_new_tokens=5, stop=()), seed=0)
    assert len(gens) == len(PROMPTS)
    for g in gens:
        assert g.finish_reason in {"stop", "length"} and g.seconds > 0
        assert g.n_output_tokens == 5 if g.finish_reason == "length" else g.n_output_tokens <= 5


def test_stop_string_cuts_text(engine):
    ids = engine.tokenizer("The answer### Human: more text", add_special_tokens=False)["input_ids"]
    g = engine._finish(ids, SamplingSpec(max_new_tokens=100), 0.1)
    assert (g.text, g.finish_reason, g.n_output_tokens) == ("The answer", "stop", len(ids))
    pad = engine.tokenizer.pad_token_id
    eos = engine.tokenizer.eos_token_id
    g = engine._finish(ids[:3] + [eos, pad, pad], SamplingSpec(max_new_tokens=6), 0.1)
    assert g.finish_reason == "stop" and g.n_output_tokens == 4
    assert cut_at_stop("a### Assistant: b### Human:", ("### Human:", "### Assistant:")) == ("a", True)
    assert cut_at_stop("plain", ("### Human:",)) == ("plain", False)


def test_sampling_is_seeded(engine):
    s = SamplingSpec(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8, stop=())
    a = engine.generate(PROMPTS, s, seed=0)
    b = engine.generate(PROMPTS, s, seed=0)
    c = engine.generate(PROMPTS, s, seed=42)
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in c]


def test_auto_engine_falls_back_and_logs(monkeypatch, caplog, tiny_dir):
    import polyglot_kedro.engines.vllm_engine as vllm_engine

    monkeypatch.setattr(vllm_engine, "vllm_usable", lambda: False)
    with caplog.at_level(logging.INFO, logger="polyglot_kedro.engines"):
        assert resolve_engine_kind("auto") == "transformers"
    assert "auto -> transformers" in caplog.text
    assert make_engine("auto", tiny_dir, batch_size=2, dtype="float32", max_model_len=256).name == "transformers"
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("tgi", tiny_dir, batch_size=2)


def test_sampling_spec_json_is_canonical():
    s = SamplingSpec(temperature=0.001, max_new_tokens=16)
    assert s.to_json() == SamplingSpec.model_validate_json(s.to_json()).to_json()
    with pytest.raises(ValueError, match="top_p"):
        SamplingSpec(top_p=1.5)


@pytest.mark.vllm
def test_vllm_engine_on_cpu(tiny_dir):
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm not installed")
    from polyglot_kedro.engines.vllm_engine import VLLMEngine

    eng = VLLMEngine(tiny_dir, batch_size=2, dtype="float32", max_model_len=256, kv_cache_space_gib=1)
    prompts = PROMPTS[:3] + ["x " * 400]  # the last one is cut from the left to fit
    gens = eng.generate(prompts, SamplingSpec(max_new_tokens=6), seed=0)
    assert len(gens) == len(prompts)
    for g in gens:
        assert g.finish_reason in {"stop", "length"}
        assert 1 <= g.n_output_tokens <= 6
        assert isinstance(g.text, str) and "### Human:" not in g.text
