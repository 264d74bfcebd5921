"""The transformers in-process backend answers many requests per generate(): same replies as one at a time."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from llm_server import make_tiny_causal_lm

from polyglot_kedro.llm import ChatRequest, build_client
from polyglot_kedro.llm.backends import Completion, FatalError
from polyglot_kedro.llm.local import InProcessBackend, messages_to_guanaco, reply_text

from .test_llm_json_schema import VERDICT  # the rubric's verdict schema, as the judge gets it


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))


def _conversations(n: int) -> list[list[dict]]:
    # lengths differ, so a batch is left-padded
    return [[{"role": "user", "content": f"Question {i}: {'why ' * (3 * i)}?"}] for i in range(n)]


def _unbatched_generate(folder: str, messages: list[dict], *, max_new: int, temperature: float, top_p: float,
                        seed: int | None) -> str:  # fmt: skip
    """What the backend did before it batched: one unpadded transformers ``generate()`` per request."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ids = tok(messages_to_guanaco(messages), return_tensors="pt", add_special_tokens=True)
    kwargs = {"max_new_tokens": max_new, "do_sample": temperature > 0}
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p)
        torch.manual_seed(seed)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        out = model.generate(**ids, pad_token_id=pad, **kwargs)
    return reply_text(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_a_batch_of_one_is_the_unbatched_transformers_generate(tiny, temperature):
    """Greedy and seeded sampling (temperature, the model's top-k, top-p) reproduce ``generate()`` exactly."""
    sampling = {"temperature": temperature, "top_p": 0.9, "max_tokens": 12}
    backend = InProcessBackend(model_path=tiny, label="tiny", sampling=sampling, dtype="float32")
    for messages in _conversations(3):
        want = _unbatched_generate(tiny, messages, max_new=12, temperature=temperature, top_p=0.9, seed=43)
        assert backend.complete(messages, seed=43).text == want


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_batched_replies_do_not_depend_on_the_batch(tiny, temperature):
    """Rows of one padded batch answer as each request alone (its own seeded generator, its own tokens)."""
    sampling = {"temperature": temperature, "top_p": 0.9, "max_tokens": 12}
    conversations = _conversations(7)
    alone = [InProcessBackend(model_path=tiny, label="tiny", sampling=sampling, batch_size=1).complete(c, seed=5)
             for c in conversations]  # fmt: skip
    seen: list[int] = []
    batched = InProcessBackend(model_path=tiny, label="tiny", sampling=sampling, batch_size=3).complete_many(
        conversations, seed=5, on_result=lambda i, _o: seen.append(i)
    )
    assert [b.text for b in batched] == [a.text for a in alone]
    assert [b.completion_tokens for b in batched] == [a.completion_tokens for a in alone]
    assert [b.prompt_tokens for b in batched] == [a.prompt_tokens for a in alone]
    assert sorted(seen) == list(range(7))
    if temperature > 0:  # the seed matters: another seed samples other replies
        other = InProcessBackend(model_path=tiny, label="tiny", sampling=sampling, batch_size=3).complete_many(
            conversations, seed=6
        )
        assert [o.text for o in other] != [b.text for b in batched]


def test_batched_json_schema_rows_each_follow_the_schema(tiny):
    sampling = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "json_mode": True, "json_schema": VERDICT}
    conversations = _conversations(5)
    batched = InProcessBackend(model_path=tiny, label="tiny", sampling=sampling, batch_size=5).complete_many(
        conversations, seed=43
    )
    alone = [InProcessBackend(model_path=tiny, label="tiny", sampling=sampling).complete(c, seed=43) for c in conversations]
    assert [b.text for b in batched] == [a.text for a in alone]
    for reply in batched:
        jsonschema.validate(json.loads(reply.text, strict=False), VERDICT)


def test_a_prompt_that_does_not_fit_fails_alone_in_its_batch(tiny):
    from transformers import AutoConfig

    context = AutoConfig.from_pretrained(tiny).max_position_embeddings
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 8}
    batch = [[{"role": "user", "content": "Hallo"}], [{"role": "user", "content": "zq " * context}],
             [{"role": "user", "content": "Welt"}]]  # fmt: skip
    out = InProcessBackend(model_path=tiny, label="tiny", sampling=sampling, batch_size=4).complete_many(batch, seed=0)
    assert isinstance(out[0], Completion) and isinstance(out[2], Completion)
    assert isinstance(out[1], FatalError) and "completion tokens (max_tokens) in the model's context" in out[1].message


def test_the_client_sends_uncached_requests_in_batches_and_caches_each(tiny, tmp_path, monkeypatch):
    cfg = {"backend": "inprocess", "model": "tiny", "max_tokens": 6, "inprocess_batch_size": 4,
           "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    calls: list[int] = []
    real = InProcessBackend._generate

    def counting(self, tokenizer, model, chunk, seed, asked):
        calls.append(len(chunk))
        return real(self, tokenizer, model, chunk, seed, asked)

    monkeypatch.setattr(InProcessBackend, "_generate", counting)
    requests = [ChatRequest(f"k{i}", c) for i, c in enumerate(_conversations(10))]
    first = build_client(cfg, stage="t", inprocess_model_path=tiny).run(requests)
    assert calls == [4, 4, 2] and all(r.ok for r in first)
    again = build_client(cfg, stage="t", inprocess_model_path=tiny)
    assert [r.text for r in again.run(requests)] == [r.text for r in first] and calls == [4, 4, 2]
    assert again.usage().iloc[0][["sent", "cached"]].tolist() == [0, 10]
    with pytest.raises(ValueError, match="inprocess_batch_size"):
        build_client({**cfg, "inprocess_batch_size": 0}, stage="t", inprocess_model_path=tiny)
