"""Prompt builders for the generation tasks (chat, XQuAD, X-CSQA).

Every builder returns the same long table, one row per (lang, prompt_setting,
item): ``contracts.PROMPT_COLUMNS``. Besides the prompt, each row carries what
the scorers need from the item, so nothing is rebuilt from the prompt text
later: ``question`` (chat: the instruction; XQuAD/X-CSQA: the question as in
the source row), ``options`` (X-CSQA: JSON list of the five option texts in
letter order; else JSON ``null``) and ``reference`` (JSON: XQuAD gold answer
texts; X-CSQA the gold letter; chat ``null``).

Prompt settings: chat ``native`` (the instruction in its own language);
XQuAD ``en:xx`` (English instruction around an xx passage/question) and
``xx:xx`` (instruction in xx); X-CSQA ``xx:xx`` (``en:xx`` is also accepted).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from polyglot_kedro.contracts import PROMPT_COLUMNS, require_columns
from polyglot_kedro.prompting import guanaco_prompt
from polyglot_kedro.tasks.templates import load_task_template, task_template

log = logging.getLogger(__name__)
_NULL = json.dumps(None)
SETTINGS = {"chat": ("native",), "xquad": ("en:xx", "xx:xx"), "xcsqa": ("xx:xx", "en:xx")}


def prompt_language(setting: str, lang: str) -> str:
    """Language of the instruction under ``setting`` (``en:xx`` -> en, else ``lang``)."""
    if setting == "en:xx":
        return "en"
    if setting in ("xx:xx", "native"):
        return lang
    raise ValueError(f"unknown prompt setting {setting!r}; expected en:xx, xx:xx or native")


def xquad_prompt(context: str, question: str, prompt_lang: str, templates: str = "paper") -> str:
    """One XQuAD prompt, as the paper's notebook filled its template.

    Args:
        context: the passage (stripped here, as the notebook did).
        question: the question (stripped here).
        prompt_lang: language of the template (instruction, labels, answer prefix).
        templates: ``paper`` (the paper's templates) or ``project`` (the
            project's own translations); a language the set lacks takes the other's.

    Returns:
        ``template.format(context=..., question=...).strip()``: ``### Human: ...``
        up to the forced answer prefix of the Assistant turn.
    """
    template, _ = task_template("xquad", prompt_lang, templates)
    return template.format(context=context.strip(), question=question.strip()).strip()


def xcsqa_prompt(question: str, options: list[str], prompt_lang: str, templates: str = "paper") -> str:
    """One X-CSQA prompt, as the paper's notebook filled its template.

    Args:
        question: the question (not stripped, as the notebook).
        options: exactly five option texts (used verbatim).
        prompt_lang: language of the template.
        templates: ``paper`` or ``project`` (see ``xquad_prompt``).

    Returns:
        ``template.format(question=..., answer_a=..., ...).strip()``, ending ``### Assistant: "``.
    """
    letters = load_task_template("xcsqa")["letters"]
    if len(options) != len(letters):
        raise ValueError(f"X-CSQA needs {len(letters)} options, got {len(options)}")
    template, _ = task_template("xcsqa", prompt_lang, templates)
    answers = {f"answer_{letter.lower()}": option for letter, option in zip(letters, options)}
    return template.format(question=question, **answers).strip()


def _log_sources(task: str, langs: set[str], templates: str) -> None:
    """Say which prompt languages took the other set's template (never silently)."""
    other = sorted(lang for lang in langs if task_template(task, lang, templates)[1] != templates)
    if other:
        log.info("%s: templates=%s; %s from the other set (%s has none)", task, templates, other, templates)


def item_window(limit: int | None = None, items: tuple[int, int | None] | None = None) -> tuple[int, int | None] | None:
    """The 1-based inclusive position range ``(start, stop)`` that ``limit`` or ``items`` name (None: all).

    ``limit=N`` is the range 1..N. ``stop`` may be None (to the last item).

    Raises:
        ValueError: both given, or a range that is empty or starts before 1.
    """
    if limit is not None and items is not None:
        raise ValueError("give either limit or items (a position range), not both")
    if limit is not None:
        items = (1, limit)
    if items is None:
        return None
    start, stop = items
    if start < 1 or (stop is not None and stop < start):
        raise ValueError(f"items: need 1 <= start <= stop (1-based, inclusive), got start={start}, stop={stop}")
    return start, stop


def _select(df: pd.DataFrame, lang: str, window: tuple[int, int | None] | None, name: str) -> pd.DataFrame:
    """The rows of ``lang`` at positions ``window`` (1-based, inclusive; positions count the
    language's rows in source order, so prompt k is the same prompt whatever the range)."""
    rows = df[df["lang"] == lang]
    if rows.empty:
        have = ", ".join(sorted(map(str, df["lang"].unique())))
        raise ValueError(f"{name}: no rows for language {lang!r} (it has: {have})")
    if window is None:
        return rows
    start, stop = window
    if start > len(rows):
        raise ValueError(f"{name}: language {lang!r} has {len(rows)} items, the range starts at item {start}")
    if stop is not None and stop > len(rows):
        # A shorter language (hi: 49 usable prompts) is evaluated on what it has, and said so.
        log.warning("%s: language %r has %d items; range %d-%d keeps %d-%d", name, lang, len(rows), start, stop,
                    start, len(rows))
    return rows.iloc[start - 1 : stop]


def gold_answers(value: Any, where: str) -> list[str]:
    """XQuAD gold answers as a list of texts (SQuAD list-of-dicts, HF dict-of-lists, or strings)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith(("[", "{")) else [value]
    if isinstance(value, dict) and "text" in value:
        value = list(value["text"])
    if hasattr(value, "tolist"):
        value = value.tolist()
    texts = [v["text"] if isinstance(v, dict) else v for v in (value or [])]
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise ValueError(f"{where}: field 'answers' holds no answer text: {value!r}")
    return texts


def build_chat_prompts(
    chat_prompts: pd.DataFrame,
    languages: list[str],
    limit: int | None = None,
    items: tuple[int, int | None] | None = None,
) -> pd.DataFrame:
    """Chat prompts in the Guanaco template, setting ``native``.

    Args:
        chat_prompts: rows ``id, lang, instruction`` (``prompt_source`` optional).
        languages: languages to keep.
        limit: first ``limit`` prompts per language (None: all).
        items: instead of ``limit``, the prompts at positions ``(start, stop)``
            per language (1-based, inclusive, in source order).

    Returns:
        Prompt table (see module doc); ``item_id`` is the source row's ``id``,
        so a range keeps the prompts' own ids.
    """
    require_columns(chat_prompts, ["id", "lang", "instruction"], "chat_prompts")
    window = item_window(limit, items)
    rows = []
    for lang in languages:
        for r in _select(chat_prompts, lang, window, "chat_prompts").itertuples(index=False):
            if not isinstance(r.instruction, str) or not r.instruction.strip():
                raise ValueError(f"chat_prompts: row id={r.id!r} lang={lang}: empty field 'instruction'")
            rows.append(("chat", lang, "native", str(r.id), guanaco_prompt(r.instruction), r.instruction, _NULL, _NULL))
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)


def _task_rows(task: str, raw: pd.DataFrame, languages: list[str], settings: list[str], window):
    """Every (language, setting, prompt language, source row, row label) of a task with prompt settings.

    An unknown setting fails before any row of it is built, naming the task and the valid settings.
    """
    name = f"{task}_raw"
    for lang in languages:
        chosen = _select(raw, lang, window, name)
        for setting in settings:
            if setting not in SETTINGS[task]:
                raise ValueError(f"{task}: unknown prompt setting {setting!r}; expected {SETTINGS[task]}")
            plang = prompt_language(setting, lang)
            for r in chosen.itertuples(index=False):
                yield lang, setting, plang, r, f"{name} row id={r.id!r} lang={lang}"


def build_xquad_prompts(
    xquad_raw: pd.DataFrame,
    languages: list[str],
    settings: list[str],
    limit: int | None = None,
    templates: str = "paper",
    items: tuple[int, int | None] | None = None,
) -> pd.DataFrame:
    """XQuAD prompts for each language and prompt setting.

    Args:
        xquad_raw: rows ``id, lang, context, question, answers``.
        languages: data languages.
        settings: ``en:xx`` and/or ``xx:xx``.
        limit: first ``limit`` questions per language.
        templates: ``paper`` or ``project`` (``xquad_prompt``).
        items: instead of ``limit``, the questions at positions ``(start, stop)``
            per language (1-based, inclusive).

    Returns:
        Prompt table; ``question`` as in the source row, ``reference`` the
        JSON list of gold answer texts (each stripped, as the notebook's gold).
    """
    require_columns(xquad_raw, ["id", "lang", "context", "question", "answers"], "xquad_raw")
    rows = []
    for lang, setting, plang, r, where in _task_rows("xquad", xquad_raw, languages, settings, item_window(limit, items)):
        for field in ("context", "question"):
            if not isinstance(getattr(r, field), str) or not getattr(r, field).strip():
                raise ValueError(f"{where}: empty field {field!r}")
        ref = json.dumps([g.strip() for g in gold_answers(r.answers, where)], ensure_ascii=False)
        prompt = xquad_prompt(r.context, r.question, plang, templates)
        rows.append(("xquad", lang, setting, str(r.id), prompt, r.question, _NULL, ref))
    _log_sources("xquad", {prompt_language(st, lang) for lang in languages for st in settings}, templates)
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)


def build_xcsqa_prompts(
    xcsqa_raw: pd.DataFrame,
    languages: list[str],
    settings: list[str],
    limit: int | None = None,
    templates: str = "paper",
    items: tuple[int, int | None] | None = None,
) -> pd.DataFrame:
    """X-CSQA prompts for each language and prompt setting.

    Args:
        xcsqa_raw: rows ``id, lang, question, options`` (5 strings), ``answer`` (letter A-E).
        languages: data languages.
        settings: ``xx:xx`` (the paper) and/or ``en:xx``.
        limit: first ``limit`` questions per language.
        templates: ``paper`` or ``project`` (``xquad_prompt``).
        items: instead of ``limit``, the questions at positions ``(start, stop)``
            per language (1-based, inclusive).

    Returns:
        Prompt table; ``options`` the JSON list of option texts,
        ``reference`` the JSON gold letter.
    """
    require_columns(xcsqa_raw, ["id", "lang", "question", "options", "answer"], "xcsqa_raw")
    letters = load_task_template("xcsqa")["letters"]
    rows = []
    for lang, setting, plang, r, where in _task_rows("xcsqa", xcsqa_raw, languages, settings, item_window(limit, items)):
        options = list(r.options.tolist() if hasattr(r.options, "tolist") else r.options)
        if len(options) != len(letters) or not all(isinstance(o, str) for o in options):
            raise ValueError(f"{where}: field 'options' must hold {len(letters)} strings, got {options!r}")
        answer = r.answer[0] if isinstance(r.answer, (list, tuple)) else r.answer
        if answer not in letters:
            raise ValueError(f"{where}: field 'answer' must be one of {letters}, got {r.answer!r}")
        if not isinstance(r.question, str) or not r.question.strip():
            raise ValueError(f"{where}: empty field 'question'")
        prompt = xcsqa_prompt(r.question, options, plang, templates)
        opts = json.dumps(options, ensure_ascii=False)
        rows.append(("xcsqa", lang, setting, str(r.id), prompt, r.question, opts, json.dumps(answer)))
    _log_sources("xcsqa", {prompt_language(st, lang) for lang in languages for st in settings}, templates)
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)
