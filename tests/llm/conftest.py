"""Fixtures for the LLM client tests: a local OpenAI-compatible server, endpoint configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for llm_server)

from llm_server import LLMTestServer  # noqa: E402


@pytest.fixture
def llm_server():
    """A running ``LLMTestServer`` (echo replies, no latency); stopped afterwards."""
    with LLMTestServer() as server:
        yield server


@pytest.fixture
def endpoint(llm_server, tmp_path):
    """Endpoint config dict pointing at ``llm_server``, cache in tmp_path."""
    return {
        "backend": "openai",
        "model": "test-model",
        "base_url": llm_server.base_url,
        "max_concurrency": 4,
        "max_retries": 4,
        "timeout_s": 5,
        "price_per_1k_prompt_tokens": 1.0,
        "price_per_1k_completion_tokens": 2.0,
        "cache_dir": str(tmp_path / "cache"),
    }
