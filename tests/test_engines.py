"""Engines on a tiny random Llama: frequency penalty, left padding, stop strings, seeds, vLLM."""

from __future__ import annotations

import importlib.util
import logging
import sys

import pytest
import torch

from polyglot_kedro.engines import SamplingSpec, make_engine, resolve_engine_kind
from polyglot_kedro.engines.base import Job
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
    prompts = PROMPTS[:3] + ["x " * 400]  # the last one is cut from the left to fit, and marked
    sampling = SamplingSpec(max_new_tokens=6)
    # Both overflow policies in one engine start (each start costs tens of seconds on CPU).
    jobs = [Job("cut", prompts, sampling), Job("fail", prompts[-1:], sampling, overflow="fail")]
    gens, (failed,) = eng.generate_jobs(jobs, seed=0)
    assert len(gens) == len(prompts)
    for g in gens:
        assert g.finish_reason in {"stop", "length"}
        assert 1 <= g.n_output_tokens <= 6
        assert isinstance(g.text, str) and "### Human:" not in g.text
    assert [g.prompt_truncated for g in gens] == [False, False, False, True]
    assert gens[-1].n_prompt_tokens == 256 - 6
    # a judge's policy: the same prompt fails with the reason instead of being cut
    assert failed.error and "completion tokens" in failed.error and failed.finish_reason == "error"


# -- no silent truncation (issue 15) -------------------------------------------------------------


def test_overflowing_prompts_are_marked_failed_or_given_less_budget(engine):
    s = SamplingSpec(temperature=0.0, max_new_tokens=8, stop=())
    long = "### Human: " + "word " * 600 + "### Assistant:"  # > 512 - 8 tokens
    short_cut, cut = engine.generate([PROMPTS[0], long], s, seed=0)
    assert not short_cut.prompt_truncated and short_cut.n_prompt_tokens < 504
    assert cut.prompt_truncated and cut.n_prompt_tokens == 512 - 8 and cut.error is None
    (failed,) = engine.generate([long], s, seed=0, overflow="fail")
    assert failed.finish_reason == "error" and failed.n_output_tokens == 0
    assert "leaves 0 of the 8 completion tokens" in failed.error
    # fits the context but not the budget: reduce gives it what is left, recorded
    n = len(engine.tokenizer(PROMPTS[0])["input_ids"])
    budget = 512 - n + 3
    (reduced,) = engine.generate([PROMPTS[0]], s.model_copy(update={"max_new_tokens": budget}), 0, overflow="reduce")
    assert reduced.max_new_tokens == 512 - n and not reduced.prompt_truncated and reduced.error is None
    (refused,) = engine.generate([PROMPTS[0]], s.model_copy(update={"max_new_tokens": budget}), 0, overflow="fail")
    assert f"leaves {512 - n} of the {budget}" in refused.error


def test_fit_prompt_rules():
    from polyglot_kedro.engines.base import fit_prompt

    assert fit_prompt([1, 2, 3], 10, 7, "fail").error is None
    f = fit_prompt([1, 2, 3, 4], 10, 7, "truncate_left")
    assert (f.ids, f.truncated) == ([2, 3, 4], True)
    assert fit_prompt([1, 2, 3, 4], 10, 7, "reduce").max_new_tokens == 6
    assert fit_prompt(list(range(10)), 10, 7, "reduce").error  # nothing left
    with pytest.raises(ValueError, match="no room"):
        fit_prompt([1], 10, 10, "truncate_left")


# -- the vLLM child is not a black box (issue 15): the parent side, with a stand-in child -------

STAND_IN_CHILD = r"""
import json, os, sys, time
req = json.load(open(sys.argv[1]))
out = os.fdopen(os.dup(1), "w", buffering=1); os.dup2(2, 1)
print("WARNING 12-01 10:00:00 [stand_in.py:1] kv cache is small", file=sys.stderr, flush=True)
print("INFO 12-01 10:00:01 [stand_in.py:2] engine up", file=sys.stderr, flush=True)
print("a stray print from a worker")  # fd 1 is stderr now: it must not break the protocol
def emit(**m): out.write(json.dumps(m) + "\n"); out.flush()
emit(event="ready", seconds=0.1)
for j, job in enumerate(req["jobs"]):
    for i, p in enumerate(job["prompts"]):
        emit(event="item", job=j, index=i, row={"text": p.upper(), "finish_reason": "stop", "n_output_tokens": 2,
             "seconds": 0.0, "n_prompt_tokens": len(p), "prompt_truncated": False, "max_new_tokens": None, "error": None})
    emit(event="chunk", job=j, indices=list(range(len(job["prompts"]))), seconds=0.5)
    emit(event="job_done", job=j, seconds=1.0)
    # the parent must have received job j before the next one starts (it writes this marker)
    marker = os.environ["STAND_IN_MARKER"] + f".{j}"
    end = time.time() + 20
    while not os.path.exists(marker):
        if time.time() > end:
            print(f"ERROR 12-01 10:00:09 [stand_in.py:9] job {j} was not streamed", file=sys.stderr); sys.exit(3)
        time.sleep(0.02)
    if os.environ.get("STAND_IN_DIE_AFTER") == str(j):
        print("RuntimeError: engine died", file=sys.stderr); sys.exit(1)
emit(event="done")
"""


@pytest.fixture
def stand_in_vllm(tiny_dir, tmp_path, monkeypatch):
    from polyglot_kedro.engines.base import Job
    from polyglot_kedro.engines.vllm_engine import VLLMEngine

    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN_CHILD)
    monkeypatch.setenv("STAND_IN_MARKER", str(tmp_path / "got"))
    eng = VLLMEngine(tiny_dir, batch_size=2, dtype="float32", max_model_len=256, timeout_s=60)
    eng.child_command = [sys.executable, str(script)]
    s = SamplingSpec(max_new_tokens=4)
    jobs = [Job("chat/en", ["a", "b"], s), Job("chat/de", ["c"], s), Job("xquad/en", ["d", "e", "f"], s)]
    return eng, jobs, tmp_path


def test_vllm_child_streams_jobs_and_relays_its_log(stand_in_vllm, caplog, monkeypatch):
    import polyglot_kedro.engines.vllm_engine as vllm_engine

    monkeypatch.setattr(vllm_engine, "PROGRESS_EVERY_S", 0.0)  # a progress line per item
    eng, jobs, tmp = stand_in_vllm
    seen = []

    def on_job(j, gens):
        seen.append((j, [g.text for g in gens], [g.seconds for g in gens]))
        (tmp / f"got.{j}").touch()  # lets the child go on: only a streaming parent gets here in time

    with caplog.at_level(logging.INFO):
        out = eng.generate_jobs(jobs, seed=7, on_job=on_job)
    assert seen == [(0, ["A", "B"], [0.5, 0.5]), (1, ["C"], [0.5]), (2, ["D", "E", "F"], [0.5] * 3)]
    assert [[g.text for g in gens] for gens in out] == [["A", "B"], ["C"], ["D", "E", "F"]]
    relayed = [r for r in caplog.records if r.name == "polyglot_kedro.engines.vllm_child"]
    assert any(r.levelno == logging.WARNING and "kv cache is small" in r.getMessage() for r in relayed)
    assert any("engine up" in r.getMessage() for r in relayed)
    assert any("stray print" in r.getMessage() for r in relayed)
    assert "chat/de done (2/3)" in caplog.text and "tok/s" in caplog.text
    assert "xquad/en 2/3 items; 5 items, 10 tokens since the start" in caplog.text


def test_vllm_child_death_keeps_finished_jobs(stand_in_vllm, monkeypatch):
    from polyglot_kedro.engines.vllm_engine import VLLMError

    eng, jobs, tmp = stand_in_vllm
    monkeypatch.setenv("STAND_IN_DIE_AFTER", "1")
    done = []

    def on_job(j, gens):
        done.append(j)
        (tmp / f"got.{j}").touch()

    with pytest.raises(VLLMError, match=r"(?s)2 of 3 job\(s\) finished.*engine died"):
        eng.generate_jobs(jobs, seed=0, on_job=on_job)
    assert done == [0, 1]
