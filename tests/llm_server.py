"""A small OpenAI-compatible ``/v1/chat/completions`` server for tests and benchmarks.

Runs on 127.0.0.1 on a free port in a background thread. Scripted replies
(``responder(body) -> str``), a fixed injected latency, per-request-key fault
plans (``"429"`` with Retry-After, ``"500"``, ``"timeout"``, ``"malformed"``,
``"no_choices"``), and counters: requests per key, total, peak in-flight.

The request key is, by default, the content of the last message (override
with ``key_fn``). Usage::

    with LLMTestServer(latency_s=0.05) as server:
        server.faults["hello"] = ["429", "500"]
        ... OpenAI(base_url=server.base_url, api_key="x") ...
        assert server.counts["hello"] == 3
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def echo_responder(body: dict) -> str:
    """Default reply: ``echo: `` + the last message's content."""
    return "echo: " + str(body["messages"][-1]["content"])


def last_content_key(body: dict) -> str:
    return str(body["messages"][-1]["content"])


class LLMTestServer:
    """The server; a context manager (``start``/``stop``)."""

    def __init__(
        self,
        *,
        responder: Callable[[dict], str] = echo_responder,
        latency_s: float = 0.0,
        key_fn: Callable[[dict], str] = last_content_key,
        retry_after_s: float = 0.05,
        hang_s: float = 3.0,
    ):
        """Configure the server.

        Args:
            responder: body -> reply text.
            latency_s: sleep before every normal reply.
            key_fn: body -> request key (for counts and fault plans).
            retry_after_s: value of the Retry-After header on ``"429"`` faults.
            hang_s: how long a ``"timeout"`` fault sleeps before replying.
        """
        self.responder = responder
        self.latency_s = latency_s
        self.key_fn = key_fn
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.faults: dict[str, list[str]] = {}
        self.counts: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.auth_headers: set[str] = set()
        self.bodies: list[dict] = []
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.completed.clear()
            self.total = 0
            self.max_in_flight = 0
            self.bodies.clear()

    def start(self) -> "LLMTestServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LLMTestServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request handling -------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        if not h.path.rstrip("/").endswith("/chat/completions"):
            return self._send(h, 404, {"error": {"message": f"no route {h.path}"}})
        try:
            body = json.loads(raw)
            key = self.key_fn(body)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return self._send(h, 400, {"error": {"message": f"bad request: {exc}"}})
        with self._lock:
            self.counts[key] += 1
            self.total += 1
            self.bodies.append(body)
            self.auth_headers.add(h.headers.get("Authorization", ""))
            plan = self.faults.get(key)
            fault = plan.pop(0) if plan else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault == "429":
                return self._send(h, 429, {"error": {"message": "rate limited"}}, {"Retry-After": str(self.retry_after_s)})
            if fault == "500":
                return self._send(h, 500, {"error": {"message": "internal error"}})
            if fault == "timeout":
                time.sleep(self.hang_s)
            if fault == "malformed":
                return self._send_raw(h, 200, b"{this is not json", "application/json")
            if self.latency_s:
                time.sleep(self.latency_s)
            if fault == "no_choices":
                return self._send(h, 200, {"id": "x", "object": "chat.completion", "model": body.get("model")})
            text = self.responder(body)
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
            payload = {
                "id": f"chatcmpl-{self.total}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "test-model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_tokens + len(text.split()),
                },
            }
            self._send(h, 200, payload)
            with self._lock:
                self.completed[key] += 1
        finally:
            with self._lock:
                self.in_flight -= 1

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send_raw(h, status, json.dumps(payload).encode(), "application/json", headers)

    @staticmethod
    def _send_raw(h, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


def make_tiny_causal_lm(folder, *, seed: int = 0) -> str:
    """Write a tiny random Llama + byte-level BPE tokenizer into ``folder`` (for in-process tests).

    head_dim is 32 (vLLM's CPU backend rejects less); bos/eos/pad/unk are set
    explicitly, or batched padding fails.

    Returns:
        The folder as a string.
    """
    from polyglot_kedro.config import TinyModelConfig
    from polyglot_kedro.modeling import build_tiny_model

    corpus = ["### Human: Translate the following text into German.### Assistant: Übersetze den folgenden Text."] * 20
    cfg = TinyModelConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                          num_key_value_heads=2, max_position_embeddings=1024, vocab_size=400,
                          tokenizer_min_frequency=0, seed=seed)  # fmt: skip
    build_tiny_model(cfg, corpus, folder)
    return str(folder)
