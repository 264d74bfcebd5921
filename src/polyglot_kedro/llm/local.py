"""In-process backends behind ``LLMClient``: a local model folder answering in this process.

``InProcessBackend`` runs transformers (left-padded batches, per-row seeded
sampling, xgrammar for JSON schemas and regexes); ``VLLMBatchBackend`` runs
vLLM's offline engine over a whole batch. Both render chat messages in the
Guanaco format and share the overflow rule; errors and ``Completion`` are
those of :mod:`polyglot_kedro.llm.backends`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from polyglot_kedro.llm.backends import BackendError, Completion, ContextOverflow, FatalError, ResultCallback
from polyglot_kedro.prompting import STOP_STRINGS, Turn, cut_at_stop, guanaco_prompt


def messages_to_guanaco(messages: list[dict]) -> str:
    """Render chat messages in the Guanaco format used by the project's models.

    System messages are prepended to the first human turn (Guanaco has no
    system role); earlier user/assistant pairs become history.

    Args:
        messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``
            ending with a user message.

    Returns:
        ``### Human: ...### Assistant:`` ready for generation.

    Raises:
        ValueError: no user message, or the last message is not from the user.
    """
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    turns = [m for m in messages if m.get("role") in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("in-process chat needs messages ending with a 'user' message")
    history: list[Turn] = []
    for i, m in enumerate(turns):
        content = m["content"]
        if i == 0 and system:
            content = f"{system}\n\n{content}"
        history.append(Turn("human" if m["role"] == "user" else "assistant", content))
    last = history.pop()
    return guanaco_prompt(last.content, history)


def reply_text(text: str) -> str:
    """A generated reply as the client returns it: cut at the first stop string, stripped."""
    return cut_at_stop(text, STOP_STRINGS)[0].strip()


class _LocalModelBackend:
    """What both in-process backends hold: a model folder, its label, sampling, dtype, overflow policy."""

    def __init__(
        self,
        *,
        model_path: str,
        label: str,
        sampling: dict[str, Any],
        dtype: str = "auto",
        overflow: ContextOverflow = "fail",
    ):
        """Remember where the model is; nothing is loaded yet.

        Args:
            model_path: a transformers model folder (config, weights, tokenizer).
            label: the model name written into results and the ledger.
            sampling: temperature, top_p, seed, max_tokens, and the reply's
                constraint: ``json_schema`` (follow this schema) or ``json_mode``
                (any JSON object), both enforced while decoding.
            dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``, resolved by
                ``modeling.resolve_dtype`` (the project's one rule: fp32 on CPU).
            overflow: a prompt that leaves less than ``max_tokens``: see
                :data:`ContextOverflow`.
        """
        self.model_path = str(model_path)
        self.model = label
        self._sampling = dict(sampling)
        self.dtype = dtype
        self.overflow = overflow


def json_constraint(sampling: dict[str, Any]) -> str | None:
    """The JSON schema (as text) a reply must follow: ``json_schema``, else any object under ``json_mode``, else None."""
    if sampling.get("json_schema"):
        return json.dumps(sampling["json_schema"], sort_keys=True)
    if sampling.get("json_mode"):
        return '{"type": "object"}'  # OpenAI's JSON mode: some JSON object
    return None


def check_json_schema(schema: dict[str, Any], where: str) -> None:
    """Fail now if xgrammar cannot enforce ``schema`` (no tokenizer needed: the grammar alone).

    Raises:
        ValueError: naming ``where`` and xgrammar's reason.
    """
    import xgrammar as xgr

    try:
        xgr.Grammar.from_json_schema(json.dumps(schema, sort_keys=True), any_whitespace=False, separators=(",", ":"))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{where}: json_schema cannot be enforced (xgrammar): {str(exc).strip()}") from exc


def compile_json_grammar(tokenizer: Any, model: Any, schema: str) -> Any:
    """``schema`` compiled by xgrammar for this tokenizer and model, as vLLM's structured outputs do.

    The same library and the same call as vLLM's xgrammar backend (no free
    whitespace, compact separators), so the transformers and vLLM in-process
    backends constrain a reply alike: a weak model cannot spend ``max_tokens``
    on blanks inside a valid-but-unfinished object.

    Args:
        tokenizer: the model's Hugging Face tokenizer.
        model: the loaded causal LM (its vocabulary size and end-of-sequence ids).
        schema: a JSON schema as text (see :func:`json_constraint`).

    Returns:
        An ``xgrammar.CompiledGrammar``.

    Raises:
        ValueError: the schema is not one xgrammar can compile (named in the message).
    """
    import xgrammar as xgr

    try:
        return xgr.GrammarCompiler(_tokenizer_info(tokenizer, model)).compile_json_schema(schema, any_whitespace=False, separators=(",", ":"))
    except RuntimeError as exc:
        raise ValueError(f"json_schema cannot be enforced (xgrammar): {str(exc).strip()}; schema: {schema}") from exc


# transformers' GenerationConfig default top-k (configuration_utils._get_default_generation_params),
# which the in-process backend sampled with when it called generate(do_sample=True) per request.
TRANSFORMERS_DEFAULT_TOP_K = 50


def _tokenizer_info(tokenizer: Any, model: Any) -> Any:
    """xgrammar's view of the vocabulary: the model's size (padding rows included) and its stop ids."""
    import xgrammar as xgr

    # The ids generate() stops on are the ones a grammar allows once it is complete.
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    stops = [int(t) for t in (eos if isinstance(eos, (list, tuple)) else [eos]) if t is not None]
    return xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=int(model.config.vocab_size), stop_token_ids=stops or None)


def compile_regex_grammar(tokenizer: Any, model: Any, regex: str) -> Any:
    """``regex`` compiled by xgrammar for this tokenizer and model: the whole reply must match it.

    Raises:
        ValueError: a regex xgrammar cannot compile (named in the message).
    """
    import xgrammar as xgr

    try:
        return xgr.GrammarCompiler(_tokenizer_info(tokenizer, model)).compile_regex(regex)
    except RuntimeError as exc:
        raise ValueError(f"regex cannot be enforced (xgrammar): {str(exc).strip()}; regex: {regex}") from exc


class RowSampler:
    """Sample each row's next token from that row's own seeded generator (a transformers logits processor).

    ``generate(do_sample=False)`` then takes the one token left: a row's draws
    depend on its seed and its own logits only, never on the other rows of the
    batch. The warpers and the draw are transformers' own (temperature, top-k,
    top-p, then ``multinomial`` over the softmax), so one row seeded with ``s``
    samples what ``torch.manual_seed(s); generate(do_sample=True)`` samples.
    """

    def __init__(self, warpers: list[Any], generators: list[Any]):
        self.warpers = warpers
        self.generators = generators

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        chosen = torch.full_like(scores, float("-inf"))
        for i, generator in enumerate(self.generators):
            row = scores[i : i + 1]
            for warp in self.warpers:
                row = warp(input_ids[i : i + 1], row)
            probs = torch.nn.functional.softmax(row, dim=-1)
            token = torch.multinomial(probs, num_samples=1, generator=generator)
            chosen[i, int(token)] = 0.0
        return chosen


class InProcessBackend(_LocalModelBackend):
    """A transformers causal LM loaded from a folder, generating in this process.

    Requests are answered in batches of ``batch_size`` rows of equal budget and
    similar length (left-padded, one ``generate()`` per batch; ``complete_many``),
    serialised with a lock (one model, one forward at a time); the tokenizer and
    model are loaded once, lazily. Each row samples from its own generator
    seeded with the request's seed (:class:`RowSampler`), so an answer does not
    depend on which requests shared its batch, and greedy rows are plain
    argmax. ``json_schema`` / ``json_mode`` are enforced while decoding by
    xgrammar's transformers logits processor (:func:`compile_json_grammar`), as
    vLLM's structured outputs enforce them in the vLLM backend: the reply is a
    JSON object following the schema unless ``max_tokens`` ends it first.
    """

    def __init__(self, *, batch_size: int = 16, **kwargs: Any):
        """See :class:`_LocalModelBackend`; ``batch_size``: rows per ``generate()`` call."""
        super().__init__(**kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._grammar: Any = None  # compiled once, on first use
        self._regex_grammars: dict[str, Any] = {}  # per regex, compiled on first use

    def __repr__(self) -> str:
        return f"InProcessBackend(model={self.model!r}, path={self.model_path!r})"

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from polyglot_kedro.modeling import ModelPreparationError, load_causal_lm, load_tokenizer

            # The project's loaders honour the folder manifest's trust_remote_code.
            try:
                tokenizer = load_tokenizer(self.model_path)
                model = load_causal_lm(self.model_path, dtype=self.dtype)
            except (OSError, ModelPreparationError) as exc:
                raise FatalError(f"cannot load in-process model from {self.model_path!r}: {exc}") from exc
            self._loaded = (tokenizer, model)
        return self._loaded

    def complete(self, messages: list[dict], *, seed: int | None, regex: str | None = None) -> Completion:
        """Generate one reply (greedy when temperature is 0): a batch of one.

        Raises:
            FatalError: model folder unloadable, or the prompt leaves less than
                ``max_tokens`` of the context (overflow ``fail``; with ``reduce``,
                only when no token is left).
        """
        (outcome,) = self.complete_many([messages], seed=seed, regexes=[regex])
        if isinstance(outcome, BackendError):
            raise outcome
        return outcome

    def complete_many(
        self, batch: list[list[dict]], *, seed: int | None, on_result: ResultCallback | None = None,
        regexes: list[str | None] | None = None,
    ) -> list[Completion | BackendError]:  # fmt: skip
        """Generate one reply per conversation, in order; per-item errors are returned, not raised.

        Args:
            batch: the conversations.
            seed: every row's sampling seed (None: the global torch generator).
            on_result: called with ``(index, outcome)`` as each generate() batch finishes.
            regexes: per conversation, a regular expression its whole reply must
                match (xgrammar, while decoding), or None; not with ``json_schema``/``json_mode``.

        Returns:
            One ``Completion`` or ``FatalError`` (the prompt does not fit) per conversation.

        Raises:
            FatalError: the model folder cannot be loaded (every item fails alike).
        """
        from tqdm.auto import tqdm

        from polyglot_kedro.engines.base import fit_prompt

        regexes = list(regexes) if regexes is not None else [None] * len(batch)
        if len(regexes) != len(batch):
            raise ValueError(f"regexes: {len(regexes)} for {len(batch)} conversations")
        if any(r is not None for r in regexes) and json_constraint(self._sampling) is not None:
            raise ValueError(f"{self.model}: a regex constraint cannot be combined with json_schema/json_mode")
        with self._lock:
            tokenizer, model = self._load()
            context = int(getattr(model.config, "max_position_embeddings", 0) or 0)
            asked = int(self._sampling["max_tokens"])
            outcomes: list[Completion | BackendError | None] = [None] * len(batch)
            rows: list[_Row] = []
            for i, messages in enumerate(batch):
                ids = tokenizer(messages_to_guanaco(messages), add_special_tokens=True)["input_ids"]
                max_new = asked
                if context:
                    fit = fit_prompt(list(ids), context, asked, self.overflow)
                    if fit.error:
                        outcomes[i] = FatalError(fit.error)
                        if on_result is not None:
                            on_result(i, outcomes[i])
                        continue
                    max_new = fit.max_new_tokens
                rows.append(_Row(i, list(ids), max_new, regexes[i]))
            # Equal budgets together (a padded batch never outgrows a row's context), constrained
            # rows together, similar lengths together.
            rows.sort(key=lambda r: (r.max_new, r.regex is None, len(r.ids)))
            chunks = [rows[k : k + self.batch_size] for k in range(0, len(rows), self.batch_size)]
            chunks = [part for c in chunks for part in _split_by_budget(c)]
            with tqdm(total=len(rows), desc=f"in-process {self.model}", unit="req", disable=None) as bar:
                for chunk in chunks:
                    for i, outcome in zip([r.index for r in chunk], self._generate(tokenizer, model, chunk, seed, asked)):
                        outcomes[i] = outcome
                        if on_result is not None:
                            on_result(i, outcome)
                    bar.update(len(chunk))
            return outcomes  # type: ignore[return-value]

    def _generate(self, tokenizer: Any, model: Any, chunk: list[_Row], seed: int | None, asked: int) -> list[Completion]:
        """One left-padded ``generate()`` over rows of one budget and one kind of constraint; a completion per row."""
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        max_new = chunk[0].max_new
        width = max(len(row.ids) for row in chunk)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        input_ids = torch.full((len(chunk), width), int(pad), dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, row in enumerate(chunk):
            input_ids[r, width - len(row.ids) :] = torch.tensor(row.ids, dtype=torch.long)
            attention[r, width - len(row.ids) :] = 1
        processors: list[Any] = []
        schema = json_constraint(self._sampling)
        if schema is not None or chunk[0].regex is not None:
            from xgrammar.contrib.hf import LogitsProcessor

            if chunk[0].regex is not None:  # one grammar per row
                for row in chunk:
                    if row.regex not in self._regex_grammars:
                        self._regex_grammars[row.regex] = compile_regex_grammar(tokenizer, model, row.regex)
                grammar: Any = [self._regex_grammars[row.regex] for row in chunk]
            else:
                if self._grammar is None:
                    self._grammar = compile_json_grammar(tokenizer, model, schema)
                grammar = self._grammar
            # xgrammar's processor holds one matcher per row: a new one per generate().
            processors.append(LogitsProcessor(grammar))
        temperature = float(self._sampling["temperature"])
        if temperature > 0:
            warpers: list[Any] = []
            if temperature != 1.0:
                warpers.append(TemperatureLogitsWarper(temperature))
            top_k = getattr(model.generation_config, "top_k", None)
            if top_k is None:  # what generate(do_sample=True) applies when neither model nor caller sets it
                top_k = TRANSFORMERS_DEFAULT_TOP_K
            if top_k:
                warpers.append(TopKLogitsWarper(top_k=int(top_k)))
            top_p = float(self._sampling["top_p"])
            if top_p < 1.0:
                warpers.append(TopPLogitsWarper(top_p=top_p))
            generators = [torch.Generator().manual_seed(seed) if seed is not None else None for _ in chunk]
            processors.append(RowSampler(warpers, generators))
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new, do_sample=False,
                pad_token_id=pad, logits_processor=processors or None, temperature=None, top_p=None, top_k=None,
            )  # fmt: skip
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        stops = {int(t) for t in (eos if isinstance(eos, (list, tuple)) else [eos]) if t is not None}
        completions = []
        for r, row in enumerate(chunk):
            new = out[r, width:].tolist()
            end = next((j + 1 for j, t in enumerate(new) if t in stops), len(new))
            new = new[:end]
            completions.append(Completion(
                text=reply_text(tokenizer.decode(new, skip_special_tokens=True)),
                prompt_tokens=len(row.ids),
                completion_tokens=len(new),
                model=self.model,
                max_tokens=None if row.max_new == asked else row.max_new,
            ))  # fmt: skip
        return completions


@dataclass(frozen=True)
class _Row:
    """One request of an in-process batch: its index, prompt ids, completion budget, regex constraint."""

    index: int
    ids: list[int]
    max_new: int
    regex: str | None


def _split_by_budget(chunk: list[_Row]) -> list[list[_Row]]:
    """``chunk`` cut where the completion budget or the kind of constraint changes (rows arrive sorted so)."""
    parts: list[list[_Row]] = []
    for row in chunk:
        last = parts[-1][-1] if parts else None
        if last is not None and (last.max_new, last.regex is None) == (row.max_new, row.regex is None):
            parts[-1].append(row)
        else:
            parts.append([row])
    return parts


class VLLMBatchBackend(_LocalModelBackend):
    """vLLM's offline engine on a model folder: every uncached request of a run in one batch.

    vLLM pays a long start per engine (about a minute on CPU), so this backend
    answers a whole batch per call (``complete_many``) through
    ``polyglot_kedro.engines``' vLLM engine, seeded per engine as the paper
    did. Each item is handed to ``on_result`` as soon as the engine finishes
    it (the client caches it then), so a kill loses only unfinished items. A
    prompt that leaves less than ``max_tokens`` of the model's context is that
    item's ``FatalError`` with the reason (overflow ``fail``), or gets what is
    left (``reduce``, recorded in ``Completion.max_tokens``); it is never cut
    (a judge must read the rubric).

    ``json_schema`` is enforced by vLLM's structured outputs (the reply always
    parses and follows the schema); ``json_mode`` alone asks for any JSON
    object, as OpenAI's JSON mode does.
    """

    def __repr__(self) -> str:
        return f"VLLMBatchBackend(model={self.model!r}, path={self.model_path!r})"

    def complete(self, messages: list[dict], *, seed: int | None) -> Completion:
        """One request (a batch of one)."""
        (outcome,) = self.complete_many([messages], seed=seed)
        if isinstance(outcome, BackendError):
            raise outcome
        return outcome

    def complete_many(
        self, batch: list[list[dict]], *, seed: int | None, on_result: ResultCallback | None = None
    ) -> list[Completion | BackendError]:
        """Generate one reply per conversation, in order; per-item errors are returned, not raised.

        Args:
            batch: the conversations.
            seed: the engine seed (0 when None).
            on_result: called with ``(index, outcome)`` as each item finishes
                (in completion order), before the rest of the batch is done.

        Returns:
            One ``Completion`` or ``BackendError`` per conversation, in order.
        """
        from transformers import AutoConfig

        from polyglot_kedro.engines import SamplingSpec, make_engine
        from polyglot_kedro.engines.base import Job
        from polyglot_kedro.modeling import model_location

        where, load_kwargs = model_location(self.model_path)
        context = int(getattr(AutoConfig.from_pretrained(where, **load_kwargs), "max_position_embeddings", 0) or 0)
        asked = int(self._sampling["max_tokens"])
        prompts = [messages_to_guanaco(m) for m in batch]
        outcomes: list[Completion | BackendError | None] = [None] * len(prompts)
        sampling = SamplingSpec(
            temperature=float(self._sampling["temperature"]),
            top_p=float(self._sampling["top_p"]),
            top_k=0,
            frequency_penalty=0.0,
            max_new_tokens=asked,
            stop=STOP_STRINGS,
        )
        # No free whitespace between JSON tokens: a weak model can otherwise
        # spend max_tokens on blanks inside a valid-but-unfinished object.
        structured = None
        if self._sampling.get("json_schema"):
            structured = {"json": self._sampling["json_schema"], "disable_any_whitespace": True}
        elif self._sampling.get("json_mode"):
            structured = {"json_object": True, "disable_any_whitespace": True}

        def item_done(_job: int, i: int, gen) -> None:
            if gen.error is not None:
                outcome: Completion | BackendError = FatalError(gen.error)
            else:
                outcome = Completion(
                    text=reply_text(gen.text),
                    prompt_tokens=int(gen.n_prompt_tokens),
                    completion_tokens=int(gen.n_output_tokens),
                    model=self.model,
                    max_tokens=gen.max_new_tokens,
                )
            outcomes[i] = outcome
            if on_result is not None:
                on_result(i, outcome)

        engine = make_engine(
            "vllm", self.model_path, batch_size=len(prompts), dtype=self.dtype, max_model_len=context or 2048
        )
        try:
            kwargs = {"structured_output": structured} if structured else {}
            job = Job("llm batch", prompts, sampling, batch_size=len(prompts), overflow=self.overflow)
            engine.generate_jobs([job], seed or 0, on_item=item_done, **kwargs)
        finally:
            engine.close()
        return outcomes  # type: ignore[return-value]
