"""The LLM-endpoint client shared by translation and judging (see ``client``)."""

from polyglot_kedro.llm.cache import CompletionCache, cache_key
from polyglot_kedro.llm.client import (
    ChatRequest,
    ChatResult,
    LLMClient,
    LLMEndpointConfig,
    build_client,
    redact,
    resolve_api_key,
)

__all__ = [
    "ChatRequest",
    "ChatResult",
    "CompletionCache",
    "LLMClient",
    "LLMEndpointConfig",
    "build_client",
    "cache_key",
    "redact",
    "resolve_api_key",
]
