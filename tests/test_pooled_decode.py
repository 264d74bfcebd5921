"""The pooled scheduler's own decode loop (engines/pooled_decode.py) against transformers' generate and warpers."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from polyglot_kedro.engines import SamplingSpec, pooled_decode
from polyglot_kedro.engines.frequency_penalty import FrequencyPenaltyLogitsProcessor
from polyglot_kedro.engines.pooled_decode import (
    ReservedLayer,
    decode_batch,
    next_token_probs,
    plan_batches,
    prefill_groups,
    register_gqa_attention,
)
from polyglot_kedro.engines.tiny_model import build_tiny_llama
from polyglot_kedro.engines.transformers_engine import TransformersEngine

PROMPTS = [
    "### Human: Write a long story about the sea, a boat and the people on it.### Assistant:",
    "### Human: Die Verteidigung der Panthers gab nur 308 Punkte ab.### Assistant:",
    "### Human: Name a colour.### Assistant:",
    "### Human: ¿Cuántos?### Assistant:",
    "Hi",
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> TransformersEngine:
    return TransformersEngine(str(build_tiny_llama(tmp_path_factory.mktemp("tiny_pd"))), batch_size=8, dtype="float32")


def _sorted_ids(engine) -> list[list[int]]:
    return sorted((engine.tokenizer(p)["input_ids"] for p in PROMPTS), key=len, reverse=True)


def _hf_greedy(engine, ids: list[list[int]], n: int, penalty: float, eos: int | None = None) -> list[list[int]]:
    """transformers' generate, one prompt at a time (no padding at all), greedy."""
    out = []
    for row in ids:
        x = torch.tensor([row])
        seq = engine.model.generate(
            input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
            logits_processor=LogitsProcessorList([FrequencyPenaltyLogitsProcessor(penalty, len(row))]),
            eos_token_id=eos, pad_token_id=engine.tokenizer.pad_token_id,
        )  # fmt: skip
        out.append(seq[0, len(row) :].tolist())
    return out


def test_plan_batches_caps_rows_and_padded_tokens():
    lengths = [300, 120, 100, 90, 40, 30, 30, 20]
    assert plan_batches(lengths, 20, max_rows=3, max_batch_tokens=10**6) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    # rows x (longest + budget) <= 400: the 300-token prompt alone, 2 x 140, 3 x 110, 2 x 50
    assert plan_batches(lengths, 20, max_rows=8, max_batch_tokens=400) == [[0], [1, 2], [3, 4, 5], [6, 7]]
    assert prefill_groups(lengths, prefill_tokens=10**6) == [(0, 1), (1, 3), (3, 4), (4, 5), (5, 7), (7, 8)]
    assert prefill_groups([50, 50, 50, 49], prefill_tokens=120) == [(0, 2), (2, 4)]


def test_distribution_equals_transformers_warpers():
    # penalty, temperature, top-k, top-p: the same probabilities as transformers' processors and warpers
    torch.manual_seed(0)
    vocab, steps = 300, 6
    logits = torch.randn(4, vocab) * 3
    generated = torch.randint(0, vocab, (4, steps))
    s = SamplingSpec(temperature=0.7, top_p=0.8, top_k=20, frequency_penalty=0.4, max_new_tokens=8)
    probs, idx = next_token_probs(logits.clone(), generated, s)
    ours = torch.zeros(4, vocab).scatter_(1, idx, probs)
    ours = ours / ours.sum(-1, keepdim=True)
    seq = torch.cat([torch.zeros(4, 3, dtype=torch.long), generated], dim=1)  # a 3-token "prompt"
    hf = FrequencyPenaltyLogitsProcessor(0.4, 3)(seq, logits.clone())
    for warper in (TemperatureLogitsWarper(0.7), TopKLogitsWarper(20), TopPLogitsWarper(0.8)):
        hf = warper(seq, hf)
    torch.testing.assert_close(ours, torch.softmax(hf, -1), atol=1e-6, rtol=1e-5)
    # top-k 0 (no cut) keeps the whole vocabulary before top-p
    p0, i0 = next_token_probs(logits.clone(), None, s.model_copy(update={"top_k": 0, "top_p": 1.0}))
    assert p0.shape == (4, vocab) and (p0 > 0).all()


def test_greedy_equals_unpadded_generate_across_groups_and_batches(engine):
    # several prefill groups (small prefill_tokens) in one decode batch, left padding, a reserved cache,
    # grouped-query attention kept grouped: greedy must still be what generate() gives each prompt alone
    ids = _sorted_ids(engine)
    s = SamplingSpec(temperature=0.0, frequency_penalty=0.5, max_new_tokens=10, stop=())
    engine.model.set_attn_implementation(register_gqa_attention())
    try:
        assert len(prefill_groups([len(x) for x in ids], 40)) > 2
        ours = decode_batch(engine.model, engine.tokenizer, ids, s, torch.Generator().manual_seed(0), set(),
                            prefill_tokens=40)  # fmt: skip
    finally:
        engine.model.set_attn_implementation("sdpa")
    assert ours == _hf_greedy(engine, ids, 10, 0.5)


def test_rows_end_at_eos_and_stop_strings(engine):
    ids = _sorted_ids(engine)
    s = SamplingSpec(temperature=0.0, frequency_penalty=0.0, max_new_tokens=10, stop=())
    full = _hf_greedy(engine, ids, 10, 0.0)
    eos = full[0][3]  # the 4th token row 0 generates: row 0 ends there, EOS kept
    ours = decode_batch(engine.model, engine.tokenizer, ids, s, torch.Generator(), {eos})
    assert ours[0] == full[0][:4]
    for mine, ref in zip(ours[1:], full[1:]):  # the other rows go on (or end at their own first eos)
        assert mine == (ref[: ref.index(eos) + 1] if eos in ref else ref)
    # a stop string: the row ends at the first token whose text contains it
    text = engine.tokenizer.decode(full[1][:6], skip_special_tokens=True)
    stop = text[-3:]
    first = next(k for k in range(1, 11) if stop in engine.tokenizer.decode(full[1][:k], skip_special_tokens=True))
    out = decode_batch(engine.model, engine.tokenizer, ids, s.model_copy(update={"stop": (stop,)}), torch.Generator(), set())
    assert out[1] == full[1][:first]


def test_sampling_is_seeded_and_the_engine_names_the_scheduler(engine):
    jobs_prompts = PROMPTS * 3
    s = SamplingSpec(temperature=0.8, top_p=0.9, top_k=50, frequency_penalty=0.2, max_new_tokens=12)
    engine.pool_jobs = True
    try:
        assert engine.name == "transformers-pooled"
        a = [g.text for g in engine.generate(jobs_prompts, s, seed=3)]
        b = [g.text for g in engine.generate(jobs_prompts, s, seed=3)]
        c = [g.text for g in engine.generate(jobs_prompts, s, seed=4)]
    finally:
        engine.pool_jobs = False
    assert a == b and a != c
    assert engine.name == "transformers"


def test_reserved_layer_writes_in_place_and_refuses_overflow():
    layer = ReservedLayer(2, 1, 5, 4, torch.float32, "cpu")
    layer.fill(slice(0, 2), torch.ones(2, 1, 3, 4), torch.ones(2, 1, 3, 4), length=3)
    k, _ = layer.update(torch.full((2, 1, 1, 4), 2.0), torch.full((2, 1, 1, 4), 2.0))
    assert layer.get_seq_length() == 4 and k.shape == (2, 1, 4, 4) and k[0, 0, 3, 0] == 2.0
    layer.batch_select_indices(torch.tensor([1]))
    assert layer.keys.shape == (1, 1, 4, 4)
    layer.update(torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4))
    with pytest.raises(RuntimeError, match="reserved KV cache full"):
        layer.update(torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4))


def test_bf16_weights_run_attention_and_its_cache_in_fp32(tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("cpu_dtype applies on CPU only")
    folder = str(build_tiny_llama(tmp_path / "tiny"))
    with pytest.raises(ValueError, match="needs pool_jobs"):
        TransformersEngine(folder, dtype="float32", cpu_dtype="bfloat16")
    engine = TransformersEngine(folder, batch_size=8, dtype="float32", pool_jobs=True, cpu_dtype="bfloat16")
    assert engine.name == "transformers-pooled-bf16"
    assert {p.dtype for p in engine.model.parameters()} == {torch.bfloat16}
    buffers = dict(engine.model.named_buffers())
    assert any(name.endswith("inv_freq") for name in buffers)
    assert {b.dtype for b in buffers.values() if b.is_floating_point()} == {torch.float32}  # RoPE not rounded
    seen, caches = [], []
    real_sdpa, real_layer = torch.nn.functional.scaled_dot_product_attention, pooled_decode.ReservedLayer

    def sdpa(q, k, v, *a, **kw):
        seen.append((q.dtype, k.dtype, v.dtype))
        return real_sdpa(q, k, v, *a, **kw)

    def layer(*a, **kw):
        caches.append(real_layer(*a, **kw))
        return caches[-1]

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", sdpa)
    monkeypatch.setattr(pooled_decode, "ReservedLayer", layer)
    s = SamplingSpec(temperature=0.8, top_p=0.9, top_k=50, frequency_penalty=0.2, max_new_tokens=8)
    a = [g.text for g in engine.generate(PROMPTS * 2, s, seed=1)]
    assert seen and set(seen) == {(torch.float32,) * 3}  # prefill and every decode step
    assert caches and {c.keys.dtype for c in caches} == {torch.float32}
    assert a == [g.text for g in engine.generate(PROMPTS * 2, s, seed=1)]  # seeded, reproducible


def test_explicit_bf16_on_a_cpu_without_bf16_instructions_warns(tmp_path, monkeypatch, caplog):
    if torch.cuda.is_available():
        pytest.skip("cpu_dtype applies on CPU only")
    from polyglot_kedro.engines import transformers_engine

    folder = str(build_tiny_llama(tmp_path / "tiny"))
    monkeypatch.setattr(transformers_engine, "cpu_has_native_bf16", lambda *a, **kw: False)
    with caplog.at_level("WARNING", logger=transformers_engine.__name__):
        engine = TransformersEngine(folder, dtype="float32", pool_jobs=True, cpu_dtype="bfloat16")
    assert engine.name == "transformers-pooled-bf16"  # the user's explicit choice is kept, with a warning
    assert "this CPU has no bf16 instructions" in caplog.text
    caplog.clear()
    monkeypatch.setattr("polyglot_kedro.modeling.cpu_has_native_bf16", lambda *a, **kw: False)
    with caplog.at_level("WARNING", logger=transformers_engine.__name__):
        auto = TransformersEngine(folder, dtype="float32", pool_jobs=True, cpu_dtype="auto")
    assert auto.name == "transformers-pooled" and auto.model.dtype == torch.float32 and not caplog.text


def test_gqa_attention_on_bf16_inputs_is_fp32_attention_rounded_once():
    torch.manual_seed(0)
    q = torch.randn(2, 4, 5, 16, dtype=torch.bfloat16)
    k, v = torch.randn(2, 2, 5, 16, dtype=torch.bfloat16), torch.randn(2, 2, 5, 16, dtype=torch.bfloat16)
    module = torch.nn.Module()
    out, _ = pooled_decode._sdpa_gqa(module, q, k, v, None)
    ref = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                           enable_gqa=True)  # fmt: skip
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, ref.to(torch.bfloat16).transpose(1, 2).contiguous())
