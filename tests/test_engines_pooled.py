"""TransformersEngine.generate_jobs pooling: input order, callbacks, determinism, greedy = job by job."""

from __future__ import annotations

import pytest

from polyglot_kedro.engines import SamplingSpec
from polyglot_kedro.engines.base import Job
from polyglot_kedro.engines.tiny_model import build_tiny_llama
from polyglot_kedro.engines.transformers_engine import TransformersEngine

# Uneven lengths, so length sorting reorders items across jobs.
LANG_PROMPTS = {
    "en": ["### Human: Name a colour.### Assistant:", "### Human: Write a long story about the sea and a boat.### Assistant:", "Hi"],
    "de": ["### Human: Wie viele Punkte?### Assistant:", "### Human: Die Verteidigung der Panthers gab nur 308 Punkte ab.### Assistant:"],
    "es": ["### Human: ¿Cuántos puntos?### Assistant:"],
    "ru": [],
}
# The paper's chat sampling (frequency penalty and stop strings included).
PAPER = SamplingSpec(temperature=0.8, top_p=0.9, top_k=50, frequency_penalty=0.2, max_new_tokens=12)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny_pool")))


def _jobs(sampling: SamplingSpec, batch_size: int = 4) -> list[Job]:
    return [Job(lang, list(p), sampling, batch_size=batch_size) for lang, p in LANG_PROMPTS.items()]


def _texts(out) -> list[list[str]]:
    return [[g.text for g in gens] for gens in out]


def test_pooled_sampling_is_reproducible_across_engines(tiny_dir):
    # Two engine instances (a fresh process's view): same jobs, seed, settings -> same outputs.
    a = TransformersEngine(tiny_dir, batch_size=4, max_model_len=512, pool_jobs=True)
    b = TransformersEngine(tiny_dir, batch_size=4, max_model_len=512, pool_jobs=True)
    first = a.generate_jobs(_jobs(PAPER), seed=42)
    again = a.generate_jobs(_jobs(PAPER), seed=42)
    other_engine = b.generate_jobs(_jobs(PAPER), seed=42)
    assert _texts(first) == _texts(again) == _texts(other_engine)
    assert [[g.n_output_tokens for g in gens] for gens in first] == [[g.n_output_tokens for g in gens] for gens in other_engine]
    assert _texts(a.generate_jobs(_jobs(PAPER), seed=0)) != _texts(first)


def test_pooled_keeps_input_order_and_callbacks(tiny_dir):
    eng = TransformersEngine(tiny_dir, batch_size=4, max_model_len=512, pool_jobs=True)
    items, jobs_done = [], []
    out = eng.generate_jobs(_jobs(PAPER), seed=0, on_item=lambda j, i, g: items.append((j, i, g)),
                            on_job=lambda j, gens: jobs_done.append((j, list(gens))))  # fmt: skip
    assert [len(g) for g in out] == [len(p) for p in LANG_PROMPTS.values()]
    # every item reported once, with the generation that came back at its place
    assert sorted((j, i) for j, i, _ in items) == [(j, i) for j, p in enumerate(LANG_PROMPTS.values()) for i in range(len(p))]
    assert all(out[j][i] is g for j, i, g in items)
    # every job reported once, empty jobs too, with its generations in input order
    assert sorted(j for j, _ in jobs_done) == list(range(len(LANG_PROMPTS)))
    assert all(gens == out[j] for j, gens in jobs_done)
    for gens, prompts in zip(out, LANG_PROMPTS.values()):
        for g, p in zip(gens, prompts):
            assert g.n_prompt_tokens == len(eng.tokenizer(p)["input_ids"])
            assert g.finish_reason in {"stop", "length"} and 0 < g.n_output_tokens <= PAPER.max_new_tokens


def test_pooled_greedy_equals_job_by_job(tiny_dir):
    # Greedy decoding does not depend on batching (left padding), so pooling must return exactly
    # what job-by-job batching returns, item for item: pooling only regroups the work.
    greedy = SamplingSpec(temperature=0.0, frequency_penalty=0.5, max_new_tokens=10, stop=())
    pooled = TransformersEngine(tiny_dir, batch_size=3, max_model_len=512, pool_jobs=True)
    per_job = TransformersEngine(tiny_dir, batch_size=3, max_model_len=512, pool_jobs=False)
    assert _texts(pooled.generate_jobs(_jobs(greedy, 3), 0)) == _texts(per_job.generate_jobs(_jobs(greedy, 3), 0))


def test_pooled_runs_reduced_budgets_and_failures_apart(tiny_dir):
    eng = TransformersEngine(tiny_dir, batch_size=8, max_model_len=24, pool_jobs=True)
    s = SamplingSpec(temperature=0.0, max_new_tokens=8, stop=())
    long = "### Human: " + "word " * 30 + "### Assistant:"
    # a prompt that leaves 1..7 of the 8 tokens of the context: "reduce" runs it with what is left
    words = 1
    while 24 - len(eng.tokenizer("### Human: " + "a " * words + "### Assistant:")["input_ids"]) >= 8:
        words += 1
    tight = "### Human: " + "a " * words + "### Assistant:"
    assert 1 <= 24 - len(eng.tokenizer(tight)["input_ids"]) < 8
    jobs = [Job("fail", [long, "Hi"], s, overflow="fail"), Job("reduce", ["Hi", tight], s, overflow="reduce")]
    out = eng.generate_jobs(jobs, 0)
    assert out[0][0].finish_reason == "error" and "max_tokens" in out[0][0].error
    assert out[0][1].error is None and out[0][1].max_new_tokens is None
    reduced = out[1][1]
    assert reduced.max_new_tokens is not None and reduced.max_new_tokens < 8
    assert reduced.n_output_tokens <= reduced.max_new_tokens
