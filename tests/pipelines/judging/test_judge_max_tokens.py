"""Judge ``max_tokens: null``: the paper's judge sent no max_tokens, and neither does the request then."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from polyglot_kedro.llm import ChatRequest, LLMEndpointConfig, build_client


def _ask(endpoint: dict, judge_server) -> dict:
    judge_server.reset_counts()
    [result] = build_client(endpoint, stage="test").run(
        [ChatRequest(key="k1", messages=[{"role": "user", "content": "Rate this."}])]
    )
    assert result.ok, result
    [body] = judge_server.bodies
    return body


def test_null_max_tokens_is_omitted_from_the_request(llm_endpoints, judge_server):
    judge = {**llm_endpoints["judge"], "max_tokens": None}
    body = _ask(judge, judge_server)
    assert "max_tokens" not in body and "max_completion_tokens" not in body
    assert body["temperature"] == 0.0 and body["seed"] == 42  # the rest of the request is unchanged
    # a set limit is still sent (a different cache key, so this is a new request)
    assert _ask({**judge, "max_tokens": 64}, judge_server)["max_tokens"] == 64


def test_null_max_tokens_needs_an_api_endpoint():
    with pytest.raises(ValidationError, match="max_tokens null"):
        LLMEndpointConfig(backend="inprocess", model="base_model-inprocess", max_tokens=None)
    assert LLMEndpointConfig(backend="openai", model="gpt-3.5-turbo-1106", max_tokens=None).max_tokens is None
