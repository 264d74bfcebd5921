"""The LLM client against a real local HTTP server through the real ``openai`` SDK."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from llm_server import LLMTestServer

from polyglot_kedro.llm import ChatRequest, CompletionCache, LLMEndpointConfig, build_client, redact

SECRET = "sk-test-SECRET123"


def _requests(n: int, prefix: str = "q") -> list[ChatRequest]:
    return [ChatRequest(key=f"{prefix}{i}", messages=[{"role": "user", "content": f"{prefix} {i}"}]) for i in range(n)]


def test_results_in_order_cached_rerun_and_ledger(llm_server, endpoint):
    client = build_client(endpoint, stage="test")
    reqs = _requests(6)
    results = client.run(reqs)
    assert [r.key for r in results] == [r.key for r in reqs]
    assert all(r.ok and not r.cached for r in results)
    assert results[2].text == "echo: q 2"
    assert llm_server.total == 6
    again = build_client(endpoint, stage="test").run(reqs)
    assert llm_server.total == 6  # nothing sent twice
    assert all(r.cached and r.ok for r in again)
    assert [r.text for r in again] == [r.text for r in results]
    usage = client.usage().iloc[0]
    assert (usage.requests, usage.sent, usage.cached, usage.failed) == (6, 6, 0, 0)
    assert usage.prompt_tokens == 12 and usage.completion_tokens == 18  # "q i" = 2 words, "echo: q i" = 3
    assert usage.cost_usd == pytest.approx(12 / 1000 * 1.0 + 18 / 1000 * 2.0)


def test_duplicate_requests_sent_once(llm_server, endpoint):
    reqs = _requests(2) + _requests(2)
    results = build_client(endpoint, stage="test").run(reqs)
    assert llm_server.total == 2
    assert all(r.ok for r in results) and [r.cached for r in results] == [False, False, True, True]


def test_concurrency_overlaps_and_is_bounded(endpoint):
    with LLMTestServer(latency_s=0.3) as server:
        cfg = dict(endpoint, base_url=server.base_url, max_concurrency=4)
        results = build_client(cfg, stage="test").run(_requests(8))
    assert all(r.ok for r in results)
    assert server.max_in_flight == 4


def test_faults_survived_no_item_lost(endpoint):
    """The SDK retries 429/5xx/timeouts; a malformed 200 body is re-asked by the backend; attempts are counted."""
    with LLMTestServer(hang_s=1.5, retry_after_s=0.3) as server:
        server.faults.update({
            "q 0": ["429"],
            "q 1": ["500", "500"],
            "q 2": ["timeout"],
            "q 3": ["malformed"],
            "q 4": ["no_choices", "429", "500"],
        })  # fmt: skip
        cfg = dict(endpoint, base_url=server.base_url, timeout_s=0.5, max_concurrency=6)
        start = time.monotonic()
        results = build_client(cfg, stage="test").run(_requests(6))
        elapsed = time.monotonic() - start
    assert [r.ok for r in results] == [True] * 6
    assert [r.text for r in results] == [f"echo: q {i}" for i in range(6)]
    assert [r.attempts for r in results] == [2, 3, 2, 2, 4, 1]
    assert [server.counts[f"q {i}"] for i in range(6)] == [2, 3, 2, 2, 4, 1]
    assert elapsed >= 0.3  # the Retry-After of the 429 was waited out


def test_retry_after_honoured_by_the_sdk_one_item_paid_once(endpoint):
    """429 with Retry-After, then 200: the SDK waits what the server asked, the item is paid and cached once."""
    wait = 1.2  # above the SDK's own first backoff (at most 0.5 s): only Retry-After explains the pause
    with LLMTestServer(retry_after_s=wait) as server:
        server.faults["q 0"] = ["429"]
        client = build_client(dict(endpoint, base_url=server.base_url), stage="test")
        start = time.monotonic()
        (result,) = client.run(_requests(1))
        elapsed = time.monotonic() - start
        assert server.counts["q 0"] == 2
        again = build_client(dict(endpoint, base_url=server.base_url), stage="test").run(_requests(1))
        assert server.counts["q 0"] == 2 and again[0].cached  # the answer is cached: never asked a third time
    assert result.ok and result.text == "echo: q 0" and result.attempts == 2 and not result.cached
    assert elapsed >= wait
    usage = client.usage().iloc[0]
    assert (usage.sent, usage.attempts, usage.failed) == (1, 2, 0)
    # paid once: the tokens of the one 200 reply, not of the refused attempt
    assert (usage.prompt_tokens, usage.completion_tokens) == (2, 3)
    assert usage.cost_usd == pytest.approx(2 / 1000 * 1.0 + 3 / 1000 * 2.0)


def test_malformed_bodies_share_the_retry_budget_with_the_sdk(llm_server, endpoint):
    """A re-ask after a broken 200 body and the SDK's retries draw on one max_retries: never more sends."""
    llm_server.faults["q 0"] = ["malformed", "500", "500", "500"]
    llm_server.faults["q 1"] = ["malformed", "no_choices", "malformed"]
    (first, second) = build_client(dict(endpoint, max_retries=2), stage="test").run(_requests(2))
    assert not first.ok and first.attempts == 3 and "HTTP 500" in first.error
    assert not second.ok and second.attempts == 3 and "malformed response" in second.error
    assert llm_server.counts["q 0"] == llm_server.counts["q 1"] == 3  # max_retries + 1


def test_removed_backoff_keys_fail_at_start_up_with_the_reason():
    for key in ("backoff_base_s", "backoff_max_s"):
        with pytest.raises(ValueError, match=f"{key} no longer exists: the openai SDK's own backoff"):
            LLMEndpointConfig.model_validate({"backend": "openai", "model": "m", key: 1.0})


def test_exhausted_retries_is_a_failed_result_not_cached_and_retried_next_run(llm_server, endpoint):
    llm_server.faults["q 1"] = ["500"] * 10
    cfg = dict(endpoint, max_retries=2)
    results = build_client(cfg, stage="test").run(_requests(3))
    assert [r.ok for r in results] == [True, False, True]
    bad = results[1]
    assert bad.text is None and "HTTP 500" in bad.error and bad.attempts == 3 and not bad.cached
    client = build_client(cfg, stage="test")
    llm_server.faults["q 1"] = []
    again = client.run(_requests(3))
    assert [r.ok for r in again] == [True, True, True]
    assert llm_server.counts["q 1"] == 4 and llm_server.counts["q 0"] == 1
    assert client.usage().iloc[0][["sent", "cached"]].tolist() == [1, 2]


def test_client_error_not_retried(llm_server, endpoint):
    def key_fn(body):  # the server answers 400 for this one
        content = body["messages"][-1]["content"]
        if content == "q 0":
            raise KeyError("rejected by test")
        return content

    llm_server.key_fn = key_fn
    results = build_client(endpoint, stage="test").run(_requests(2))
    assert not results[0].ok and results[0].attempts == 1 and "HTTP 400" in results[0].error
    assert results[1].ok


def test_sampling_params_and_json_mode_reach_the_server(llm_server, endpoint):
    cfg = dict(endpoint, temperature=0.0, seed=7, json_mode=True, max_tokens=33)
    client = build_client(cfg, stage="test")
    client.run([ChatRequest("a", [{"role": "user", "content": "x"}]), ChatRequest("b", [{"role": "user", "content": "x"}], attempt=1)])
    bodies = sorted(llm_server.bodies, key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [7, 8]  # a deliberate re-ask is a new request with a new seed
    assert bodies[0]["response_format"] == {"type": "json_object"} and bodies[0]["max_tokens"] == 33


def test_key_never_leaks(llm_server, endpoint, caplog, capfd, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm_server.faults["q 1"] = ["500"] * 10
    with caplog.at_level(logging.DEBUG):
        client = build_client(dict(endpoint, max_retries=1), stage="test", credentials={"api_key": SECRET})
        results = client.run(_requests(3))
        usage = client.usage()
    assert f"Bearer {SECRET}" in llm_server.auth_headers  # the key was used
    out, err = capfd.readouterr()
    texts = [caplog.text, out, err, repr(client), repr(results), usage.to_csv(), repr(client.config)]
    files = [p.read_bytes() for p in Path(endpoint["cache_dir"]).rglob("*") if p.is_file()]
    assert all(SECRET not in t for t in texts)
    assert all(SECRET.encode() not in b for b in files) and files
    assert redact(f"Incorrect API key provided: {SECRET}", SECRET) == "Incorrect API key provided: ***"


def test_key_from_env_and_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    cfg = {"backend": "openai", "model": "gpt-x", "api_key_env": "POLYGLOT_TEST_KEY", "cache_dir": str(tmp_path)}
    monkeypatch.delenv("POLYGLOT_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="POLYGLOT_TEST_KEY"):
        build_client(cfg, stage="test")
    monkeypatch.setenv("POLYGLOT_TEST_KEY", SECRET)
    assert SECRET not in repr(build_client(cfg, stage="test"))


def test_config_typo_fails_with_field_name():
    with pytest.raises(ValueError, match="temprature"):
        LLMEndpointConfig.model_validate({"backend": "openai", "model": "m", "temprature": 0.1})


CHILD = textwrap.dedent(
    """
    import json, sys
    from polyglot_kedro.llm import ChatRequest, build_client
    cfg = json.loads(sys.argv[1])
    reqs = [ChatRequest(key=f"q{i}", messages=[{"role": "user", "content": f"q {i}"}]) for i in range(int(sys.argv[2]))]
    build_client(cfg, stage="child").run(reqs)
    """
)


def _child(tmp_path: Path, cfg: dict, n: int) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, str(script), json.dumps(cfg), str(n)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def test_kill_9_midway_then_rerun_sends_only_missing(endpoint, tmp_path):
    n = 20
    with LLMTestServer(latency_s=0.15) as server:
        cfg = dict(endpoint, base_url=server.base_url, max_concurrency=2)
        child = _child(tmp_path, cfg, n)
        deadline = time.monotonic() + 60
        while sum(server.completed.values()) < 6 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        done_before = len(CompletionCache(cfg["cache_dir"]))
        assert 0 < done_before < n
        first_counts = dict(server.counts)
        server.reset_counts()
        results = build_client(cfg, stage="test").run(_requests(n))
    assert all(r.ok for r in results)
    assert server.total == n - done_before  # only the missing requests were sent
    assert sum(r.cached for r in results) == done_before
    cached_keys = {r.key for r in results if r.cached}
    assert all(server.counts[f"q {k[1:]}"] == 0 for k in cached_keys)
    assert all(first_counts.get(f"q {k[1:]}") == 1 for k in cached_keys)


def test_concurrent_processes_and_threads_share_the_cache(endpoint, tmp_path):
    with LLMTestServer(latency_s=0.01) as server:
        cfg = dict(endpoint, base_url=server.base_url, max_concurrency=4)
        children = [_child(tmp_path, cfg, 24) for _ in range(2)]
        here = build_client(cfg, stage="test").run(_requests(24))
        for child in children:
            assert child.wait(timeout=120) == 0, child.stderr.read().decode()
    assert all(r.ok for r in here)
    cache = CompletionCache(cfg["cache_dir"])
    assert len(cache) == 24
    conn = sqlite3.connect(cache.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# -- bugs are errors, not invalid items (issue 15) ------------------------------------------


def test_a_bug_in_the_backend_aborts_the_stage_and_finished_items_stay_cached(llm_server, endpoint, monkeypatch):
    """A TypeError inside the backend is a bug: it propagates with its traceback, it is not a failed item."""
    from polyglot_kedro.llm import backends

    real_parse = backends._parse_completion

    def planted(response, model):  # a bug that only bites one item's reply
        if response.choices[0].message.content == "echo: q 3":
            raise TypeError("planted bug: unsupported operand")
        return real_parse(response, model)

    monkeypatch.setattr(backends, "_parse_completion", planted)
    cfg = dict(endpoint, max_concurrency=1)
    with pytest.raises(TypeError, match="planted bug") as info:
        build_client(cfg, stage="test").run(_requests(6))
    assert "q3" in "".join(getattr(info.value, "__notes__", []))  # the note names the item
    assert llm_server.counts["q 3"] == 1  # a bug is not retried
    # what finished before the bug is kept: a rerun without the bug sends only the rest
    monkeypatch.setattr(backends, "_parse_completion", real_parse)
    finished = len(CompletionCache(cfg["cache_dir"]))
    assert finished >= 3
    llm_server.reset_counts()
    results = build_client(cfg, stage="test").run(_requests(6))
    assert all(r.ok for r in results) and sum(r.cached for r in results) == finished
    assert llm_server.total == 6 - finished
    assert llm_server.counts["q 0"] == llm_server.counts["q 1"] == llm_server.counts["q 2"] == 0


def test_transport_errors_that_escape_the_backend_are_per_item_failures(tmp_path):
    """httpx transport errors, timeouts and openai.APIError stay one item's failure, never an abort.

    The SDK has already retried what reaches this far, so the client sends it no more.
    """
    import httpx
    import openai

    from polyglot_kedro.llm.backends import Completion
    from polyglot_kedro.llm.client import LLMClient

    raised = {
        "a": httpx.ConnectError("refused"),
        "b": TimeoutError("read timed out"),
        "c": openai.APIError("gateway", request=httpx.Request("POST", "http://x"), body=None),
    }
    calls = []

    class Flaky:
        def complete(self, messages, *, seed):
            calls.append(messages[-1]["content"])
            if messages[-1]["content"] in raised:
                raise raised[messages[-1]["content"]]
            return Completion(messages[-1]["content"], 1, 1, "m")

    cfg = LLMEndpointConfig(backend="openai", model="m", max_retries=2, cache_dir=str(tmp_path))
    results = LLMClient(cfg, Flaky(), stage="t").run(
        [ChatRequest(k, [{"role": "user", "content": k}]) for k in ("a", "b", "c", "d")]
    )
    assert [r.ok for r in results] == [False, False, False, True]
    assert [r.attempts for r in results] == [1, 1, 1, 1] and sorted(calls) == ["a", "b", "c", "d"]
    assert "ConnectError" in results[0].error and "TimeoutError" in results[1].error and "APIError" in results[2].error


class EngineDeadError(Exception):
    """Stands in for vllm.v1.engine.exceptions.EngineDeadError (vLLM is not installed in CI)."""


def test_an_engine_crash_aborts_and_finished_batches_stay_cached(tmp_path, monkeypatch):
    """The in-process vLLM backend: a dead engine is not N invalid items, and earlier batches are kept."""
    from llm_server import make_tiny_causal_lm

    import polyglot_kedro.engines as engines
    from polyglot_kedro.engines.base import Generation

    folder = make_tiny_causal_lm(tmp_path / "tiny")
    calls = []

    class FakeEngine:  # the first engine answers, the second one dies mid-batch
        def generate_jobs(self, jobs, seed, *, on_item=None, on_job=None, structured_output=None):
            calls.append(seed)
            if len(calls) > 1:
                raise EngineDeadError("EngineCore encountered an issue. See stack trace for the root cause.")
            gens = [Generation(text=f"reply {i}", finish_reason="stop", n_output_tokens=2, seconds=0.0)
                    for i, _ in enumerate(jobs[0].prompts)]  # fmt: skip
            for i, g in enumerate(gens):
                on_item(0, i, g)
            return [gens]

        def close(self):
            pass

    monkeypatch.setattr(engines, "make_engine", lambda *a, **k: FakeEngine())
    cfg = {"backend": "inprocess", "inprocess_engine": "vllm", "model": "tiny", "max_tokens": 4,
           "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    requests = [ChatRequest("a", [{"role": "user", "content": "Hallo"}]),
                ChatRequest("b", [{"role": "user", "content": "Welt"}]),
                ChatRequest("a-reask", [{"role": "user", "content": "Hallo"}], attempt=1)]  # another seed: a 2nd batch
    client = build_client(cfg, stage="t", inprocess_model_path=folder)
    with pytest.raises(EngineDeadError):
        client.run(requests)
    assert len(calls) == 2
    assert len(CompletionCache(cfg["cache_dir"])) == 2  # the first batch's answers are kept
    again = build_client(cfg, stage="t", inprocess_model_path=folder).run(requests[:2])
    assert all(r.cached for r in again) and len(calls) == 2


# -- caches know where an answer came from (issue 15) --------------------------------------


def test_two_servers_with_the_same_model_name_do_not_share_verdicts(endpoint, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    request = [ChatRequest("item", [{"role": "user", "content": "Rate this answer."}])]
    with LLMTestServer(responder=lambda body: '{"score": 2}') as first, \
            LLMTestServer(responder=lambda body: '{"score": 5}') as second:  # fmt: skip
        a = build_client(dict(endpoint, base_url=first.base_url), stage="judging").run(request)
        b = build_client(dict(endpoint, base_url=second.base_url), stage="judging").run(request)
        assert (a[0].text, b[0].text) == ('{"score": 2}', '{"score": 5}')
        assert not b[0].cached and second.total == 1
        # the same endpoint with another key is the same source of answers: the key is not in the cache key
        c = build_client(dict(endpoint, base_url=first.base_url), stage="judging",
                         credentials={"api_key": "sk-other-SECRET"}).run(request)  # fmt: skip
        assert c[0].cached and c[0].text == '{"score": 2}' and first.total == 1


def test_endpoint_identity_is_normalised_and_keeps_no_secret():
    from polyglot_kedro.llm.client import endpoint_identity

    def ident(url):
        return endpoint_identity(LLMEndpointConfig(backend="openai", model="m", base_url=url))

    assert ident(None) == ident("https://api.openai.com/v1/") == "openai:https://api.openai.com/v1"
    assert ident("HTTP://LocalHost:8000/v1") == "openai:http://localhost:8000/v1"
    assert ident("http://127.0.0.1:8000/v1") != ident("http://127.0.0.1:8001/v1")
    leaky = ident("https://user:sk-in-url-SECRET@proxy.example/v1?api-key=sk-query-SECRET")
    assert "SECRET" not in leaky and leaky == "openai:https://proxy.example/v1"
