"""The OpenAI-compatible backend behind ``LLMClient``, and what every backend returns or raises.

The in-process backends (a local model folder) are in :mod:`polyglot_kedro.llm.local`.

A backend answers one request per call, retries included, and reports how
many sends it took (``Completion.attempts`` / ``BackendError.attempts``).
For an OpenAI-compatible endpoint the openai SDK does the retrying: 408, 409,
429, 5xx, timeouts and connection errors, with exponential backoff and jitter,
honouring ``Retry-After``. What the SDK counts as success but is no answer --
a 200 whose body is not JSON or has no choices -- is re-asked here, within the
same budget (see ``OpenAIBackend.complete``). A ``BackendError`` is that
item's final failure; caching and accounting live in the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal


logger = logging.getLogger(__name__)


class BackendError(Exception):
    """One item's final failure; ``message`` is already free of secrets.

    ``attempts``: the requests sent for it (the SDK's retries included).
    """

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.message = message
        self.attempts = attempts


class FatalError(BackendError):
    """Not retried by the client: the SDK's last word, a client error, an in-process failure."""


class MalformedResponseError(BackendError):
    """A 200 whose body is no chat completion (not JSON, no choices, no text): the SDK does not retry it."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    # The completion budget the item got when the in-process overflow policy
    # "reduce" lowered it (None: the configured max_tokens).
    max_tokens: int | None = None
    # Requests sent for this answer (the SDK's retries and re-asks included).
    attempts: int = 1


#: In-process backends: what a prompt that leaves less than ``max_tokens`` of
#: the model's context becomes. ``fail`` (default): that item's ``FatalError``
#: with the reason; ``reduce``: the completion gets what is left (recorded in
#: ``Completion.max_tokens``). Never cut from the left: a judge must read the
#: whole rubric, a translator the whole text.
ContextOverflow = Literal["fail", "reduce"]

#: ``on_result(index, outcome)``: one item of ``complete_many`` finished.
ResultCallback = Callable[[int, "Completion | BackendError"], None]


class OpenAIBackend:
    """One chat completion per call through the ``openai`` SDK, which does the retrying."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str,
        timeout_s: float,
        max_retries: int,
        sampling: dict[str, Any],
    ):
        """Create the SDK client.

        Args:
            model: endpoint model name.
            base_url: None for OpenAI, else e.g. ``http://127.0.0.1:8000/v1``.
            api_key: the secret (kept only inside the SDK client).
            timeout_s: per-request timeout.
            max_retries: re-sends per item at most (the SDK's retries and
                re-asks after a malformed body together).
            sampling: temperature, top_p, seed, max_tokens, json_mode.
        """
        import openai

        self._openai = openai
        self.model = model
        self.max_retries = max_retries
        self._sampling = dict(sampling)
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s)

    def __repr__(self) -> str:  # never show the SDK client (it holds the key)
        return f"OpenAIBackend(model={self.model!r})"

    def _request(self, messages: list[dict], seed: int | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self._sampling["temperature"],
            "top_p": self._sampling["top_p"],
        }
        if self._sampling["max_tokens"] is not None:  # None: send none (the endpoint's limit)
            kwargs["max_tokens"] = self._sampling["max_tokens"]
        if seed is not None:
            kwargs["seed"] = seed
        if self._sampling.get("json_schema"):
            # Structured outputs (OpenAI, vLLM serve): the reply follows the schema.
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": self._sampling["json_schema"]},
            }
        elif self._sampling["json_mode"]:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def complete(self, messages: list[dict], *, seed: int | None) -> Completion:
        """Send one request; the SDK retries it, a malformed 200 body is re-asked here.

        The SDK retries only on an HTTP status or a transport error; a 200
        whose body breaks on the way (a proxy under load, a truncated reply)
        is a success to it. That case alone is re-sent by this loop, sharing
        the ``max_retries`` budget with the SDK's retries: each call gets
        what is left, so an item is never sent more than ``max_retries + 1``
        times. The SDK reports its retries (``retries_taken`` on a response,
        the ``x-stainless-retry-count`` header of an error's last request),
        which gives the per-item attempt count the ledger and records keep.

        Raises:
            FatalError: what the SDK gave up on (status, timeout, connection),
                or no budget left after malformed bodies.
        """
        openai = self._openai
        kwargs = self._request(messages, seed)
        sent = 0
        while True:
            client = self._client if sent == 0 else self._client.with_options(max_retries=self.max_retries - sent)
            try:
                raw = client.chat.completions.with_raw_response.create(**kwargs)
            except openai.APIStatusError as exc:
                raise FatalError(f"HTTP {exc.status_code} ({type(exc).__name__})", sent + _retries_taken(exc) + 1) from None
            except openai.APITimeoutError as exc:  # before its parent APIConnectionError
                raise FatalError(f"timeout: {type(exc).__name__}", sent + _retries_taken(exc) + 1) from None
            except openai.APIConnectionError as exc:
                raise FatalError(f"connection error: {type(exc).__name__}", sent + _retries_taken(exc) + 1) from None
            sent += raw.retries_taken + 1
            try:
                response = raw.parse()
            except (openai.APIResponseValidationError, ValueError) as exc:  # JSONDecodeError is a ValueError
                reason = f"malformed response: {type(exc).__name__}"
            else:
                try:
                    return replace(_parse_completion(response, self.model), attempts=sent)
                except MalformedResponseError as exc:
                    reason = exc.message
            if sent > self.max_retries:
                raise FatalError(reason, attempts=sent)
            logger.debug("%s (attempt %d): asking again", reason, sent)


def _retries_taken(exc: Any) -> int:
    """The SDK's retry count for the request an ``openai.APIError`` came from (0 if unknown)."""
    request = getattr(exc, "request", None)
    try:
        return int(request.headers.get("x-stainless-retry-count", 0)) if request is not None else 0
    except (TypeError, ValueError):
        return 0


def _parse_completion(response: Any, model: str) -> Completion:
    """Check the SDK's (unvalidated) object and pull out text and usage.

    Raises:
        MalformedResponseError: no choices, or a choice without text.
    """
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponseError(f"malformed response: no choices (got {type(response).__name__})")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str):
        raise MalformedResponseError("malformed response: choice without text content")
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    return Completion(
        text=text,
        prompt_tokens=int(prompt_tokens) if isinstance(prompt_tokens, int) else 0,
        completion_tokens=int(completion_tokens) if isinstance(completion_tokens, int) else 0,
        model=str(getattr(response, "model", None) or model),
    )
