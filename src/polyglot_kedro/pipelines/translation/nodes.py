"""Translation: AlpacaEval prompts and Guanaco examples into the target languages.

Templates (package data, ``polyglot_kedro/prompts/``, read with
``prompting.read_prompt_file``), kept byte for byte from the
released code (ZurichNLP/multilingual-instruction-tuning, translate_with_gpt.py
@ 054c812 and its ``guanaco_human_template``), which words them slightly
differently from the paper's Figures 8 and 10 (docs/FIDELITY.md):
``translation_prompt.txt`` (prompts), ``translation_guanaco.txt``
(conversations, role markers replaced by ``<S1>``/``<S2>``), system message
``translation_system.txt`` ("You are a helpful assistant.").

Every request goes through ``polyglot_kedro.llm``: a rerun pays only for what
is missing (the cache), and failures are rows with a reason, never dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from pydantic import Field

from polyglot_kedro.config import StrictModel
from polyglot_kedro.contracts import SOURCE_ERROR, require_columns
from polyglot_kedro.llm import ChatRequest, ChatResult, build_client
from polyglot_kedro.prompting import (
    ROLE_MARKER,
    GuanacoParseError,
    Turn,
    format_guanaco,
    parse_guanaco,
    read_prompt_file,
)

logger = logging.getLogger(__name__)

# Names as the paper wrote them into its template ("standard modern Greek",
# "Mandarin Chinese"; its AlpacaEval call used "Norwegian").
DEFAULT_LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "sv": "Swedish", "zh": "Mandarin Chinese",
    "es": "Spanish", "ru": "Russian", "ca": "Catalan", "no": "Norwegian", "bg": "Bulgarian",
    "is": "Icelandic", "hi": "Hindi", "el": "standard modern Greek",
}  # fmt: skip

_ROLE_TOKEN = re.compile(r"<\s*S\s*([12])\s*>", re.IGNORECASE)


class TranslationParams(StrictModel):
    """``params:translation`` (conf/base/parameters_translation.yml)."""

    source_lang: str = "en"
    prompt_languages: list[str]
    eval_languages: list[str]
    language_names: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LANGUAGE_NAMES))
    endpoint: str = "translator"  # key of params:llm_endpoints
    max_invalid_retries: int = Field(1, ge=0)  # re-asks for a conversation whose role tokens broke
    # Guanaco translations: decode each reply under a regex of its source's role-token
    # sequence (<S1>/<S2> in order, each turn non-empty), so a weak translator cannot
    # drop, repeat or reorder them. Needs an in-process transformers endpoint (xgrammar);
    # off in the paper (GPT-3.5 was asked, and broken replies were rejected).
    constrain_roles: bool = False
    # With constrain_roles (ignored without): the most characters (or "<"+char pairs) a
    # translated turn may hold; null = unbounded. A cap lets a random model close every
    # turn within max_tokens.
    max_turn_chars: int | None = Field(None, ge=1)

    def language_name(self, lang: str) -> str:
        if lang not in self.language_names:
            raise ValueError(
                f"translation.language_names has no name for language {lang!r}; "
                f"known: {sorted(self.language_names)}"
            )
        return self.language_names[lang]


def _translator(translation: TranslationParams, llm_endpoints: Mapping[str, Any], base_model: str | None):
    if translation.endpoint not in llm_endpoints:
        raise ValueError(
            f"translation.endpoint {translation.endpoint!r} is not in params llm_endpoints "
            f"(conf/base/parameters_llm.yml); known: {sorted(llm_endpoints)}"
        )
    config = llm_endpoints[translation.endpoint]
    # base_model is only used by the in-process backend; an API endpoint ignores it.
    return build_client(config, stage="translation", inprocess_model_path=base_model)


def _messages(template: str, text: str, lang_name: str) -> list[dict]:
    return [
        {"role": "system", "content": read_prompt_file("translation_system.txt")},
        {"role": "user", "content": template.format(tgt_lang=lang_name, prompt=text)},
    ]


def english_prompts(chat_prompts_raw: pd.DataFrame, source_lang: str = "en") -> pd.DataFrame:
    """The source prompts: rows with ``lang == source_lang``, or all rows when there is no ``lang``.

    Args:
        chat_prompts_raw: ``id, lang, instruction`` (``id``/``lang`` optional).
        source_lang: the language translated from.

    Returns:
        ``id, instruction`` (ids ``a0000``... when the source has none).

    Raises:
        ValueError: no ``instruction`` column, or empty/non-string instructions (rows named).
    """
    if "instruction" not in chat_prompts_raw.columns:
        raise ValueError(f"chat_prompts_raw has no 'instruction' column (columns: {list(chat_prompts_raw.columns)})")
    df = chat_prompts_raw
    if "lang" in df.columns:
        df = df[df["lang"] == source_lang]
    ids = df["id"].astype(str) if "id" in df.columns else pd.Series([f"a{i:04d}" for i in df.index], index=df.index)
    bad = [str(i) for i, v in zip(ids, df["instruction"]) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"chat_prompts_raw: empty or non-string 'instruction' in rows with id {bad[:10]}")
    return pd.DataFrame({"id": ids.to_numpy(), "instruction": df["instruction"].to_numpy()})


def translate_prompts(
    chat_prompts_raw: pd.DataFrame,
    base_model: str | None,
    translation: dict[str, Any],
    llm_endpoints: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Translate the English chat prompts into every ``translation.prompt_languages``.

    Args:
        chat_prompts_raw: ``id, lang, instruction`` (or AlpacaEval ``instruction`` rows).
        base_model: model folder for the in-process backend (ignored by API endpoints).
        translation: ``params:translation``.
        llm_endpoints: ``params:llm_endpoints``.

    Returns:
        ``prompt_translations``: one DataFrame per target language (partition
        id = language) with ``id, lang, instruction, source_id, status, error,
        model``; ``status`` is ``ok`` or ``failed`` (then ``instruction`` is
        None and ``error`` says why; a rerun sends only those again).
        ``translation_usage``: the client's ledger row.
    """
    params = TranslationParams.model_validate(translation)
    source = english_prompts(chat_prompts_raw, params.source_lang)
    template = read_prompt_file("translation_prompt.txt")
    client = _translator(params, llm_endpoints, base_model)
    out: dict[str, pd.DataFrame] = {}
    for lang in params.prompt_languages:
        name = params.language_name(lang)
        requests = [ChatRequest(key=f"{sid}-{lang}", messages=_messages(template, text, name))
                    for sid, text in zip(source["id"], source["instruction"])]  # fmt: skip
        results = client.run(requests, desc=f"translate prompts -> {lang}")
        out[lang] = pd.DataFrame(
            {
                "id": source["id"].to_numpy(),
                "lang": lang,
                # The paper's template quotes the prompt; GPT often keeps the quotes.
                # The paper evaluated on such outputs as they were, and so do we.
                "instruction": [r.text.strip() if r.ok else None for r in results],
                "source_id": source["id"].to_numpy(),
                "status": ["ok" if r.ok else "failed" for r in results],
                "error": [r.error for r in results],
                "model": [r.model for r in results],
            }
        )
        failed = int((out[lang]["status"] == "failed").sum())
        if failed:
            logger.warning("prompt translation into %s: %d of %d failed (rerun retries only those)", lang, failed, len(results))
    return out, client.usage()


def _materialise(partitions: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """PartitionedDataset loads give callables; in-memory runs give DataFrames."""
    return {k: (v() if isinstance(v, Callable) else v) for k, v in partitions.items()}


def assemble_chat_prompts(
    chat_prompts_raw: pd.DataFrame, prompt_translations: Mapping[str, Any], translation: dict[str, Any]
) -> pd.DataFrame:
    """The evaluation prompts: native prompts where the source has them, else machine translations.

    Args:
        chat_prompts_raw: the raw prompts (``lang`` optional: then all English);
            lines rejected by the loader (``source_error``) are skipped, each
            with a warning naming its file and line.
        prompt_translations: ``translate_prompts`` output, partition per language.
        translation: ``params:translation``.

    Returns:
        ``id, lang, instruction, prompt_source`` (``native``/``mt``), one block per
        ``translation.eval_languages`` in that order.

    Raises:
        ValueError: a language with neither native prompts nor a translation,
            or whose translations have failed rows (named, with the first error).
    """
    params = TranslationParams.model_validate(translation)
    raw = chat_prompts_raw
    if SOURCE_ERROR in raw.columns:  # lines read with on_bad_line: reject (a prompt that cannot be read)
        bad = raw[SOURCE_ERROR].notna()
        for error in raw.loc[bad, SOURCE_ERROR]:
            logger.warning("chat_prompts_raw: skipped an unreadable prompt: %s", error)
        raw = raw[~bad].drop(columns=[SOURCE_ERROR])
    if "lang" not in raw.columns:
        raw = raw.assign(lang=params.source_lang)
    if "id" not in raw.columns:
        raw = raw.assign(id=[f"a{i:04d}" for i in raw.index])
    known = set(params.language_names) | {params.source_lang}
    unknown = raw[~raw["lang"].isin(known)]
    if len(unknown):
        codes = sorted(unknown["lang"].astype(str).unique())
        raise ValueError(
            f"chat_prompts_raw: unknown language code(s) {codes} in rows with id "
            f"{unknown['id'].astype(str).tolist()[:10]}; known codes (translation.language_names): {sorted(known)}"
        )
    skipped = raw[~raw["lang"].isin(params.eval_languages)]
    if len(skipped):
        logger.warning(
            "chat_prompts_raw: %d row(s) in languages outside translation.eval_languages are not evaluated: %s",
            len(skipped), skipped["lang"].value_counts().to_dict(),
        )  # fmt: skip
    translations = _materialise(prompt_translations)
    blocks = []
    for lang in params.eval_languages:
        native = raw[raw["lang"] == lang]
        if len(native):
            blocks.append(pd.DataFrame({"id": native["id"].astype(str).to_numpy(), "lang": lang,
                                        "instruction": native["instruction"].to_numpy(), "prompt_source": "native"}))  # fmt: skip
            continue
        mt = translations.get(lang)
        if mt is None or not len(mt):
            raise ValueError(
                f"evaluation language {lang!r} has no native prompts in chat_prompts_raw and no machine "
                f"translation: add it to translation.prompt_languages or remove it from translation.eval_languages"
            )
        failed = mt[mt["status"] != "ok"]
        if len(failed):
            raise ValueError(
                f"evaluation language {lang!r}: {len(failed)} prompt translation(s) failed "
                f"(first: id {failed['id'].iloc[0]}: {failed['error'].iloc[0]}); rerun to retry only those"
            )
        blocks.append(pd.DataFrame({"id": mt["id"].astype(str).to_numpy(), "lang": lang,
                                    "instruction": mt["instruction"].to_numpy(), "prompt_source": "mt"}))  # fmt: skip
    return pd.concat(blocks, ignore_index=True)


def mask_roles(text: str) -> str:
    """Guanaco text with ``### Human:``/``### Assistant:`` replaced by ``<S1>``/``<S2>`` (paper, Fig. 10)."""
    return ROLE_MARKER.sub(lambda m: "<S1>" if m.group(1) == "Human" else "<S2>", text)


class RoleTokenError(ValueError):
    """A translation whose role tokens do not match its source; ``reason`` says how."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# Inside a turn: any character but "<", or "<" not followed by "S" (so no role token).
_TURN_UNIT = r"(?:[^<]|<[^S<])"
_TURN_FIRST = r"(?:[^<\s]|<[^S<])"  # a turn starts with something other than blank


def role_token_regex(masked_source: str, max_turn_chars: int | None = None) -> str:
    """The regex a translation of ``masked_source`` must match: its role tokens in order, each turn non-empty.

    Args:
        masked_source: the source after ``mask_roles`` (``<S1>``/``<S2>`` tokens).
        max_turn_chars: the most units a turn may hold (None: unbounded).

    Returns:
        A regular expression for xgrammar (no text before the first token).

    Raises:
        ValueError: the source has no role token.
    """
    tokens = [f"<S{m.group(1)}>" for m in _ROLE_TOKEN.finditer(masked_source)]
    if not tokens:
        raise ValueError("role_token_regex: the source has no <S1>/<S2> role token")
    rest = "*" if max_turn_chars is None else f"{{0,{max_turn_chars - 1}}}"
    return "".join(re.escape(tok) + " ?" + _TURN_FIRST + _TURN_UNIT + rest for tok in tokens)


def restore_roles(masked_source: str, translated: str) -> str:
    """Check the role tokens of ``translated`` against the source and restore Guanaco markers.

    Args:
        masked_source: the source after ``mask_roles``.
        translated: the model's translation.

    Returns:
        The translation in the training format (``format_guanaco``).

    Raises:
        RoleTokenError: tokens missing, duplicated or reordered, text outside
            the turns, or an empty turn.
    """
    want = [m.group(1) for m in _ROLE_TOKEN.finditer(masked_source)]
    got = [m.group(1) for m in _ROLE_TOKEN.finditer(translated)]
    if got != want:
        if len(got) < len(want):
            reason = f"missing role token(s): expected {len(want)}, found {len(got)}"
        elif len(got) > len(want):
            reason = f"duplicated role token(s): expected {len(want)}, found {len(got)}"
        else:
            reason = f"reordered role tokens: expected {''.join(want)}, found {''.join(got)}"
        raise RoleTokenError(reason)
    parts = _ROLE_TOKEN.split(translated)
    if parts[0].strip().strip('"').strip():
        raise RoleTokenError("text before the first role token")
    turns = []
    for i in range(1, len(parts), 2):
        content = parts[i + 1].strip()
        if not content:
            raise RoleTokenError(f"empty turn {i // 2 + 1} after translation")
        turns.append(Turn("human" if parts[i] == "1" else "assistant", content))
    return format_guanaco(turns)


def translate_guanaco(
    mt_source_examples: pd.DataFrame,
    base_model: str | None,
    translation: dict[str, Any],
    llm_endpoints: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Translate English Guanaco conversations for the MT mixes (paper, Figure 10).

    Role markers become ``<S1>``/``<S2>`` before translation and are restored
    after; a translation with broken role tokens is asked again (a new request,
    so not the cached answer) up to ``translation.max_invalid_retries`` times,
    then rejected with the reason. Nothing rejected reaches a training mix.

    Args:
        mt_source_examples: ``id, text, lang, target_lang`` (English Guanaco rows).
        base_model: model folder for the in-process backend.
        translation: ``params:translation``.
        llm_endpoints: ``params:llm_endpoints``.

    Returns:
        ``guanaco_translations`` (partition per language: ``id`` =
        ``{source_id}-{lang}``, ``source_id, lang, text, status`` (``ok``), ``model``),
        ``translation_rejected`` (``id, lang, reason, raw``),
        ``guanaco_translation_usage`` (ledger row).

    Raises:
        ValueError: a missing input column (named).
    """
    params = TranslationParams.model_validate(translation)
    require_columns(mt_source_examples, ["id", "text", "target_lang"], "mt_source_examples")
    template = read_prompt_file("translation_guanaco.txt")
    client = _translator(params, llm_endpoints, base_model)
    rejected: list[dict] = []
    pending: list[dict] = []
    for row in mt_source_examples.itertuples(index=False):
        sid, lang = str(row.id), str(row.target_lang)
        tid = f"{sid}-{lang}"
        try:
            parse_guanaco(row.text)
        except GuanacoParseError as exc:
            rejected.append({"id": tid, "lang": lang, "reason": f"source not Guanaco format: {exc.reason}", "raw": row.text})
            continue
        masked = mask_roles(row.text)
        regex = role_token_regex(masked, params.max_turn_chars) if params.constrain_roles else None
        pending.append({"id": tid, "source_id": sid, "lang": lang, "masked": masked, "regex": regex,
                        "messages": _messages(template, masked, params.language_name(lang))})  # fmt: skip
    accepted: list[dict] = []
    for attempt in range(params.max_invalid_retries + 1):
        if not pending:
            break
        results: list[ChatResult] = client.run(
            [ChatRequest(p["id"], p["messages"], attempt=attempt, regex=p["regex"]) for p in pending],
            desc=f"translate guanaco (attempt {attempt + 1})",
        )
        retry = []
        for p, r in zip(pending, results):
            if not r.ok:  # not cached: the next run sends it again
                rejected.append({"id": p["id"], "lang": p["lang"], "reason": f"request failed: {r.error}", "raw": None})
                continue
            try:
                text = restore_roles(p["masked"], r.text)
            except RoleTokenError as exc:
                if attempt < params.max_invalid_retries:
                    retry.append(p)
                else:
                    rejected.append({"id": p["id"], "lang": p["lang"], "reason": exc.reason, "raw": r.text})
                continue
            accepted.append({"id": p["id"], "source_id": p["source_id"], "lang": p["lang"], "text": text,
                             "status": "ok", "model": r.model})  # fmt: skip
        pending = retry
    columns = ["id", "source_id", "lang", "text", "status", "model"]
    ok = pd.DataFrame(accepted, columns=columns)
    partitions = {lang: g.reset_index(drop=True) for lang, g in ok.groupby("lang", sort=True)}
    rejected_df = pd.DataFrame(rejected, columns=["id", "lang", "reason", "raw"])
    if len(rejected_df):
        logger.warning("guanaco translation: %d rejected (see translation_rejected)", len(rejected_df))
    return partitions, rejected_df, client.usage()
