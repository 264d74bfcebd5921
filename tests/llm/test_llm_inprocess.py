"""The in-process backend: Guanaco rendering, stop strings, cache and ledger on a tiny model."""

from __future__ import annotations

import importlib.util

import pytest
from llm_server import make_tiny_causal_lm

from polyglot_kedro.llm import ChatRequest, build_client
from polyglot_kedro.llm.local import messages_to_guanaco, reply_text


def test_messages_to_guanaco_puts_system_into_first_human_turn():
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye?"},
    ]
    assert messages_to_guanaco(msgs) == "### Human: Be brief.\n\nHi### Assistant: Hello### Human: Bye?### Assistant:"
    with pytest.raises(ValueError, match="ending with a 'user'"):
        messages_to_guanaco(msgs[:3])


def test_reply_text_cuts_at_stop_and_strips():
    assert reply_text(" Bonjour ### Human: next") == "Bonjour"
    assert reply_text("a### Assistant: b### Human: c") == "a"
    assert reply_text("plain ") == "plain"


def test_inprocess_backend_generates_caches_and_counts(tmp_path):
    folder = make_tiny_causal_lm(tmp_path / "model")
    cfg = {"backend": "inprocess", "model": "tiny", "max_tokens": 6, "cache_dir": str(tmp_path / "cache")}
    reqs = [ChatRequest(f"k{i}", [{"role": "user", "content": f"Translate {i}"}]) for i in range(2)]
    client = build_client(cfg, stage="test", inprocess_model_path=folder)
    results = client.run(reqs)
    assert all(r.ok and isinstance(r.text, str) and r.prompt_tokens > 0 for r in results)
    assert all(0 < r.completion_tokens <= 6 for r in results)
    again = build_client(cfg, stage="test", inprocess_model_path=folder)
    assert [r.text for r in again.run(reqs)] == [r.text for r in results]
    assert again.usage().iloc[0][["sent", "cached"]].tolist() == [0, 2]
    with pytest.raises(ValueError, match="inprocess_model_path"):
        build_client(cfg, stage="test")


def test_inprocess_prompt_too_long_is_a_failed_item(tmp_path):
    folder = make_tiny_causal_lm(tmp_path / "model")
    cfg = {"backend": "inprocess", "model": "tiny", "max_tokens": 4, "cache_dir": str(tmp_path / "cache")}
    long = ChatRequest("long", [{"role": "user", "content": "zq " * 3000}])
    result = build_client(cfg, stage="test", inprocess_model_path=folder).run([long])[0]
    assert not result.ok and "completion tokens (max_tokens) in the model's context" in result.error
    assert result.attempts == 1


def _prompt_leaving(folder, room: int) -> str:
    """A user message whose Guanaco prompt leaves exactly ``room`` tokens of the tiny model's context."""
    from transformers import AutoConfig, AutoTokenizer

    tok, context = AutoTokenizer.from_pretrained(folder), AutoConfig.from_pretrained(folder).max_position_embeddings
    text = ""
    while len(tok(messages_to_guanaco([{"role": "user", "content": text + "zq "}]))["input_ids"]) <= context - room:
        text += "zq "
    assert len(tok(messages_to_guanaco([{"role": "user", "content": text}]))["input_ids"]) == context - room
    return text


def test_inprocess_prompt_short_of_max_tokens_fails_or_gets_a_recorded_smaller_budget(tmp_path):
    """No silent truncation: a prompt that fits the context but leaves < max_tokens is not quietly shortchanged."""
    from polyglot_kedro.llm.backends import FatalError
    from polyglot_kedro.llm.local import InProcessBackend

    folder = make_tiny_causal_lm(tmp_path / "model")
    content = _prompt_leaving(folder, room=3)
    cfg = {"backend": "inprocess", "model": "tiny", "max_tokens": 8, "cache_dir": str(tmp_path / "cache")}
    result = build_client(cfg, stage="test", inprocess_model_path=folder).run([ChatRequest("k", [{"role": "user", "content": content}])])[0]
    assert not result.ok and "leaves 3 of the 8 completion tokens" in result.error
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 8}
    reduced = InProcessBackend(model_path=folder, label="tiny", sampling=sampling, overflow="reduce")
    done = reduced.complete([{"role": "user", "content": content}], seed=None)
    assert done.max_tokens == 3 and done.completion_tokens <= 3
    with pytest.raises(FatalError, match="leaves 3 of the 8"):
        InProcessBackend(model_path=folder, label="tiny", sampling=sampling).complete(
            [{"role": "user", "content": content}], seed=None
        )


def test_batch_backend_fails_short_prompts_and_hands_over_each_item(tmp_path, monkeypatch):
    """The vLLM batch backend's contract, on the transformers engine (same overflow rule): per-item
    failure with the reason, and every finished item handed to ``on_result`` before the batch returns."""
    import polyglot_kedro.engines as engines
    from polyglot_kedro.engines.transformers_engine import TransformersEngine
    from polyglot_kedro.llm.backends import Completion, FatalError
    from polyglot_kedro.llm.local import VLLMBatchBackend

    folder = make_tiny_causal_lm(tmp_path / "model")
    monkeypatch.setattr(engines, "make_engine", lambda kind, path, **kw: TransformersEngine(
        path, batch_size=2, dtype="float32", max_model_len=kw["max_model_len"]))  # fmt: skip
    short = _prompt_leaving(folder, room=3)
    backend = VLLMBatchBackend(model_path=folder, label="tiny", sampling={"temperature": 0.0, "top_p": 1.0, "max_tokens": 8})
    seen = []
    batch = [[{"role": "user", "content": c}] for c in ("Hallo", short, "Welt")]
    out = backend.complete_many(batch, seed=0, on_result=lambda i, o: seen.append((i, type(o).__name__)))
    assert isinstance(out[1], FatalError) and "leaves 3 of the 8 completion tokens" in out[1].message
    assert isinstance(out[0], Completion) and isinstance(out[2], Completion) and out[0].prompt_tokens > 0
    assert sorted(seen) == [(0, "Completion"), (1, "FatalError"), (2, "Completion")]


def test_inprocess_cache_is_keyed_on_model_content_not_label(tmp_path):
    """Two different model folders under one label must not share answers."""
    from llm_server import make_tiny_causal_lm

    from polyglot_kedro.llm import build_client

    a, b = tmp_path / "a", tmp_path / "b"
    make_tiny_causal_lm(a)
    make_tiny_causal_lm(b)
    # Change b's weights: same label, same architecture, other content.
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(b)
    with torch.no_grad():
        model.lm_head.weight.mul_(-1.0)
    model.save_pretrained(b)
    cfg = {"backend": "inprocess", "model": "same-label", "cache_dir": str(tmp_path / "cache")}
    ca = build_client(cfg, stage="t", inprocess_model_path=str(a))
    cb = build_client(cfg, stage="t", inprocess_model_path=str(b))
    assert ca.cache_model_id != cb.cache_model_id
    assert ca.cache_model_id == build_client(cfg, stage="t", inprocess_model_path=str(a)).cache_model_id


@pytest.fixture
def vllm_core_in_child(monkeypatch):
    """The engine's child runs vLLM's EngineCore in its own process (no EngineCore/Worker processes).

    These tests check the client's side of the vLLM backend (batching, per-item
    failures, cache, structured outputs); the process topology real runs use,
    an EngineCore process beside the child, is started by
    ``tests/test_engines.py::test_vllm_engine_on_cpu``. Each spawned vLLM
    process re-imports vLLM and torch: about 25 s of a 48 s test on 2 cores.
    """
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the child inherits os.environ


@pytest.mark.vllm
def test_inprocess_vllm_batches_caches_and_fails_per_item(tmp_path, vllm_core_in_child):
    """The vLLM in-process backend: one engine for the batch, per-item errors, a cached rerun."""
    if importlib.util.find_spec("vllm") is None:  # not imported here: vLLM runs in the engine's child only
        pytest.skip("vllm not installed")
    from llm_server import make_tiny_causal_lm

    from polyglot_kedro.llm import ChatRequest, build_client

    folder = make_tiny_causal_lm(tmp_path / "tiny")
    cfg = {"backend": "inprocess", "inprocess_engine": "vllm", "model": "tiny", "max_tokens": 8,
           "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    too_long = "word " * 2000  # > the tiny model's 1,024-token context
    requests = [ChatRequest("a", [{"role": "user", "content": "Translate: Hallo"}]),
                ChatRequest("b", [{"role": "user", "content": "Translate: Welt"}]),
                ChatRequest("a-again", [{"role": "user", "content": "Translate: Hallo"}]),
                ChatRequest("long", [{"role": "user", "content": too_long}]),
                # fits the context but leaves 3 of the 8 tokens: once cut from the left in the child, now a failure
                ChatRequest("short", [{"role": "user", "content": _prompt_leaving(folder, room=3)}])]  # fmt: skip
    client = build_client(cfg, stage="t", inprocess_model_path=folder)
    results = client.run(requests)
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert "completion tokens (max_tokens) in the model's context" in results[3].error
    assert "leaves 3 of the 8 completion tokens" in results[4].error
    assert results[0].text == results[2].text and results[2].cached
    usage = client.usage().iloc[0]
    assert (usage["sent"], usage["failed"]) == (4, 2)
    rerun = build_client(cfg, stage="t", inprocess_model_path=folder)
    again = rerun.run(requests[:3])
    assert all(r.cached for r in again) and rerun.usage().iloc[0]["sent"] == 0


@pytest.mark.vllm
def test_inprocess_vllm_follows_the_json_schema(tmp_path, vllm_core_in_child):
    """Structured outputs: even a random tiny model's replies parse and follow the verdict schema."""
    if importlib.util.find_spec("vllm") is None:  # not imported here: vLLM runs in the engine's child only
        pytest.skip("vllm not installed")
    import json

    from llm_server import make_tiny_causal_lm

    from polyglot_kedro.judge import parse_verdict
    from polyglot_kedro.llm import ChatRequest, build_client

    folder = make_tiny_causal_lm(tmp_path / "tiny")
    schema = {"type": "object", "additionalProperties": False, "required": ["reasoning", "score"],
              "properties": {"reasoning": {"type": "string", "maxLength": 20},
                             "score": {"type": "integer", "enum": [1, 2, 3, 4, 5, 6]}}}  # fmt: skip
    cfg = {"backend": "inprocess", "inprocess_engine": "vllm", "inprocess_dtype": "float32", "model": "tiny",
           "max_tokens": 96, "json_schema": schema, "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    client = build_client(cfg, stage="t", inprocess_model_path=folder)
    assert client.cache_model_id.endswith("+vllm+float32")
    requests = [ChatRequest(str(i), [{"role": "user", "content": f"Rate answer number {i}."}]) for i in range(6)]
    results = client.run(requests)
    assert all(r.ok for r in results), [r.error for r in results]
    for r in results:
        data = json.loads(r.text, strict=False)  # a random model may put control characters in a string
        assert set(data) == {"reasoning", "score"} and len(data["reasoning"]) <= 20
        assert parse_verdict(r.text).valid and data["score"] in range(1, 7)
